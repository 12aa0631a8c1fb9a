"""The chats API's WebSocket at /api/v1/chats/{chat_id}/ws: the chat's events in 003's shapes.

The same relay as the chat API's socket reads the same per-chat stream; `translate` shows
each event with integer ids and this document's names, and drops what 003 has no event
for (typing, participants, reply start and chunks: a reply appears as `new_message` when
it ends). Client frames: `ping`/`heartbeat`, `resume`, and `message_status`.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from flask import current_app
from pydantic import ValidationError

from models import User
from web.api.chats_v1 import bp
from web.api.chats_v1.answers import (MessageStatusAck, MessageStatusChanged, NewMessage, Pong,
                                      ReactionAdded, ReactionRemoved, SocketError, Welcome)
from web.api.chats_v1.schemas import StatusFrame
from web.api.chats_v1.serializers import message_status, message_view
from web.api.described import emits
from web.api.socket_access import access_refusal, open_chat_socket, serve_chat_socket, session_end_check
from web.auth.tokens import query_token_allowed
from web.errors import ApiError
from web.extensions import sock
from web.realtime.chat_socket import ChatSocket, SocketContext
from web.redis_client import get_redis
from web.services import chat_messages, chats, reactions
from web.services.connections import ConnectionLease
from web.services import message_status as statuses
from workers import events, runtime

OWN_EVENTS = (statuses.MESSAGE_STATUS_CHANGED, reactions.REACTION_ADDED, reactions.REACTION_REMOVED)
MESSAGE_EVENTS = (events.NEW_MESSAGE, *events.REPLY_END_TYPES)


class ChatsSocket(ChatSocket):
    """The relay, with its welcome frame in this surface's ids."""

    def __init__(self, *args: Any, welcome_ids: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.welcome_ids = welcome_ids

    def send(self, payload: dict[str, Any], server_time: str | None = None) -> None:
        if payload.get("type") == "welcome":
            payload = {**payload, **self.welcome_ids}
        super().send(payload, server_time)


@sock.route("/chats/<int:chat_id>/ws", bp=bp)
@query_token_allowed
@emits(Welcome, "`welcome`: the first frame.")
@emits(NewMessage, "`new_message`: a message posted on any surface (an AI reply once, when it has ended).")
@emits(MessageStatusChanged, "`message_status_changed`: anyone moved a message's status.")
@emits(ReactionAdded, "`reaction_added`: anyone reacted to a message.")
@emits(ReactionRemoved, "`reaction_removed`: anyone took a reaction back.")
@emits(MessageStatusAck, "`message_status_ack`: the answer to this client's `message_status` frame.")
@emits(Pong, "`pong`: the answer to this client's `ping` or `heartbeat`.")
@emits(SocketError, "`error`: a client frame that could not be served (the socket stays open).")
def chats_socket(ws, chat_id: int) -> None:
    """The chat's events as they happen, as JSON frames over a WebSocket (ACTIVE and ARCHIVED chats).

    Authenticate with `?token=` or the Authorization header; failures close the socket with
    4401 / 4403 / 4404 / 4400, or 4429 with `MAX_CONNECTIONS_PER_USER` WebSockets and event streams of
    the user already open, before any frame. Events of the chat's stream carry `event_id`:
    `?last_event_id=` (or a `resume` frame `{last_event_id}`) continues after it. Client frames:
    `ping`/`heartbeat`, `resume`, `message_status` `{message_id, status}`. 4408 closes an idle
    socket, 4401 one whose token is revoked (logout) or account deactivated, 4404 one whose chat
    is deleted, 4403 one whose user left or was removed from the chat (through the chat API), 1001
    the sockets of a process shutting down. Client frames past `WS_CLIENT_FRAMES_PER_S` a second (a
    `resume` that re-reads the stream counts as 10) get a `rate_limited` error and are dropped; three
    times that many in a second close the socket 4429. At most three times that many wait to be
    served; more are dropped, with one `frames_dropped` error. A frame over 65,536 characters
    closes the socket 1009.
    """
    opened = open_chat_socket(ws, chat_id, chats.OPEN)
    if opened is None:
        return
    user, chat, cursor = opened
    settings, connection = runtime.current().settings, ConnectionLease(get_redis(), user.id)
    ctx = SocketContext(
        chat_id=chat.id, chat_uuid=chat.uuid, user_uuid=user.uuid, username=user.username,
        idle_timeout_s=settings.ws_idle_timeout_s, replay_window_ms=settings.reply_job_timeout_s * 1000,
        session_ended=session_end_check(connection), token_check_s=settings.ws_token_check_s,
        frames_per_s=settings.ws_client_frames_per_s, refusal=access_refusal(user, chat.id, chats.OPEN),
        live_reply_ids=set,  # no streaming here: nothing of a reply in progress to replay
        actions={"message_status": status_action(user, chat.id)},
        translate=partial(translate, chat.id),
    )
    socket = ChatsSocket(ws, current_app.extensions["relay_hub"], get_redis(), ctx,
                         welcome_ids={"chat_id": chat.id, "user_id": str(user.id)})
    serve_chat_socket(ws, socket, cursor, connection)


def translate(chat_id: int, event: dict[str, Any]) -> dict[str, Any] | None:
    """An event as this surface shows it, or None when it has no such event."""
    kind = event.get("type")
    if kind in OWN_EVENTS:
        return own_event(event) if "int_ids" in event else None
    if kind in MESSAGE_EVENTS:
        return message_event(chat_id, events.event_message_id(event))
    return None


def own_event(event: dict[str, Any]) -> dict[str, Any]:
    """Status and reaction events carry their integer ids (`int_ids`): no lookup needed."""
    ids = event["int_ids"]
    shown = {key: value for key, value in event.items() if key != "int_ids"}
    shown.update(chat_id=ids["chat_id"], message_id=ids["message_id"], user_id=str(ids["user_id"]))
    for key in ("status", "previous_status"):
        if key in shown:
            shown[key] = message_status(shown[key])
    return shown


def message_event(chat_id: int, message_uuid: str | None) -> dict[str, Any] | None:
    """`new_message` with the stored message (a UUID-keyed event needs one lookup)."""
    with runtime.session() as db:
        message = chat_messages.shown_message_by_uuid(db, chat_id, message_uuid) if message_uuid else None
        if message is None:
            return None
        view = message_view(message, reactions.reactions_for(db, [message.id]).get(message.id, {}))
    return {"type": events.NEW_MESSAGE, "chat_id": chat_id, "message": view}


def status_action(user: User, chat_id: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`{"type": "message_status", "message_id", "status"}` → `message_status_ack`, or an error frame."""

    def update(frame: dict[str, Any]) -> dict[str, Any]:
        try:
            wanted = StatusFrame.model_validate(frame)
            with runtime.session() as db:
                message, chat, member = chat_messages.message_for_member(db, user, wanted.message_id)
                if chat.id != chat_id:
                    return error_frame("Message not found in this chat")
                message = statuses.change_status(db, get_redis(), chat, member, message, user, wanted.status)
                return {"type": "message_status_ack", "message_id": message.id,
                        "status": message_status(message.status)}
        except ValidationError:
            return error_frame("message_status needs an integer message_id and a status: "
                               "SENDING, SENT, DELIVERED, READ or FAILED")
        except ApiError as exc:
            return error_frame(str(exc.detail))

    return update


def error_frame(detail: str) -> dict[str, Any]:
    return {"type": "error", "error": detail, "error_code": "status_failed"}
