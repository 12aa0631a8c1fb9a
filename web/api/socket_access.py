"""Who may open a chat's WebSocket (shared by the surfaces that serve one), and how long a
WebSocket or event stream stays theirs: until the token it was opened with is revoked, an admin
deactivates their account, or they are removed from the chat. Each holds one of its user's
MAX_CONNECTIONS_PER_USER places while open (web.services.connections).

Failures close the socket with a 4xxx code and a reason before any event is sent.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from flask import Response, current_app, g, request

from models import Chat, User
from web.auth.tokens import authenticate, session_end, session_end_keys
from web.db import close_db
from web.errors import ApiError
from web.realtime.sse import StreamChecks
from web.redis_client import get_redis
from web.services import chats
from web.services.connections import ConnectionLease
from workers import events, runtime

log = logging.getLogger(__name__)

CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 429: 4429}


def open_chat_socket(ws: Any, chat_key: str | int,
                     statuses: tuple[str, ...] = chats.VISIBLE) -> tuple[User, Chat, str | None] | None:
    """The user, the chat and the `?last_event_id=` cursor; None once the socket is closed."""
    try:
        user = authenticate()
        close_db()  # a socket lives for minutes: do not hold a pooled connection meanwhile
        with runtime.session() as db:
            chat, _ = chats.chat_for_member(db, user, chat_key, statuses)
    except ApiError as exc:
        ws.close(*close_for(exc))
        return None
    cursor = request.args.get("last_event_id")
    if cursor is not None and not events.is_valid_id(cursor):
        ws.close(4400, "last_event_id is not an event id")
        return None
    return user, chat, cursor


def close_for(exc: ApiError) -> tuple[int, str]:
    """The close code and reason of a socket refused with `exc`."""
    return CLOSE_CODES.get(exc.status, 4400), str(exc.detail)


def access_refusal(user: User, chat_id: int, statuses: tuple[str, ...]) -> Callable[[], tuple[int, str] | None]:
    """How a socket of `user` on the chat would be refused if opened now (close code and reason), or
    None while it would not: asked when the chat's stream says the user was removed from it."""

    def refusal() -> tuple[int, str] | None:
        with runtime.session() as db:
            try:
                chats.chat_for_member(db, user, chat_id, statuses)
            except ApiError as exc:
                return close_for(exc)
        return None

    return refusal


def serve_chat_socket(ws: Any, socket: Any, cursor: str | None, connection: ConnectionLease) -> None:
    """Run `socket` (a ChatSocket) holding `connection`'s place, given back however it ends; with
    every place of its user taken, close it 4429 before any event."""
    try:
        connection.take()
    except ApiError as exc:
        ws.close(*close_for(exc))
        return
    try:
        socket.run(cursor, current_app.extensions["presence"])
    finally:
        connection.give_back()


@contextmanager
def stream_connection() -> Iterator[ConnectionLease]:
    """The place of the event stream this request opens among its user's connections (429 when all
    are taken): taken before anything is stored, given back if the request fails before it streams.
    The stream's response gives it back when it closes (`held_by`)."""
    connection = ConnectionLease(get_redis(), g.user.id)
    connection.take()
    try:
        yield connection
    except BaseException:
        connection.give_back()
        raise


def held_by(response: Response, connection: ConnectionLease) -> Response:
    """`response`, giving back `connection`'s place when the server closes it (ended, or its client gone)."""
    response.call_on_close(connection.give_back)
    return response


def session_end_check(connection: ConnectionLease) -> Callable[[], str | None]:
    """Why the socket or stream this request opens must end (`tokens.session_end`: its token revoked
    by a logout, its account deactivated), asked every `WS_TOKEN_CHECK_S`; None while it need not.
    Each check renews `connection`'s lease in the same round trip.

    Redis unreachable counts as neither: the relay waits for it too, and asks again at the next check.
    """
    redis, jti, user_id = get_redis(), g.claims["jti"], g.user.id

    def ended() -> str | None:
        try:
            with redis.pipeline(transaction=False) as pipe:
                connection.renew(pipe)
                pipe.mget(session_end_keys(jti, user_id))
                *_, values = pipe.execute()
            return session_end(values)
        except Exception:
            log.warning("could not check whether a stream's session ended", exc_info=True)
            return None

    return ended


def stream_checks(chat_id: int, connection: ConnectionLease) -> StreamChecks:
    """The keep-alive, session and access checks of an event stream of the chat opened by this request
    (holding `connection`, renewed at each session check).

    Access is lost as a socket's is: an event says the user was removed, and a stream opened now
    would be refused (the sessions that stream, 001's and 004's, show archived chats).
    """
    settings, user_uuid = runtime.current().settings, g.user.uuid
    refusal = access_refusal(g.user, chat_id, chats.OPEN)

    def access_lost(event: dict[str, Any]) -> bool:
        return events.removes(event, user_uuid) and refusal() is not None

    return StreamChecks(settings.sse_keepalive_s, settings.ws_token_check_s, session_end_check(connection),
                        access_lost)
