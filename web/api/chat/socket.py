"""Endpoint 6: the chat WebSocket at /api/v1/chat/chats/{chat_id}/ws."""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from models import Chat, Message
from web.api.chat import bp, frames
from web.api.chat.routes import typing_event
from web.api.described import emits
from web.api.parsing import canonical_uuid
from web.api.socket_access import access_refusal, open_chat_socket, serve_chat_socket, session_end_check
from web.auth.tokens import query_token_allowed
from web.errors import ApiError
from web.extensions import sock
from web.realtime.chat_socket import ChatSocket, SocketContext
from web.redis_client import get_redis
from web.services import chats, replies
from web.services.connections import ConnectionLease
from workers import events, runtime


def uuid_view(event: dict[str, Any]) -> dict[str, Any]:
    """This surface shows UUIDs only: drop the integer ids other surfaces' events carry."""
    return {key: value for key, value in event.items() if key != "int_ids"}


@sock.route("/chats/<chat_id>/ws", bp=bp)
@query_token_allowed
@emits(frames.Welcome, "`welcome`: the first frame, with the position the socket starts from.")
@emits(frames.NewMessage, "`new_message`: a message was posted (on any surface).")
@emits(frames.ReplyStart, "`ai_response_start`: an AI reply begins.")
@emits(frames.ReplyChunk, "`ai_response_chunk`: the next piece of a reply and the reply so far.")
@emits(frames.ReplyComplete, "`ai_response_complete`: a reply ended DELIVERED or CANCELLED.")
@emits(frames.ReplyError, "`ai_error`: a reply ended FAILED.")
@emits(frames.RagStatus, "`rag_status`: a RAG reply's document search, before its tokens.")
@emits(frames.TypingIndicator, "`typing_indicator`: a participant is typing.")
@emits(frames.ParticipantAdded, "`participant_added`: a user joined the chat.")
@emits(frames.ParticipantRemoved, "`participant_removed`: a user left or was removed from the chat.")
@emits(frames.MessageStatusChanged, "`message_status_changed`: a message's delivery status moved (003).")
@emits(frames.Reaction, "`reaction_added` / `reaction_removed`: a reaction on a message (003).")
@emits(frames.Pong, "`pong`: the answer to `ping` / `heartbeat`.")
@emits(frames.StopAck, "`stop_ack`: the answer to `stop`.")
@emits(frames.SocketError, "`error`: a client frame that could not be handled.")
def chat_socket(ws, chat_id: str) -> None:
    """The chat's real-time WebSocket (token in `?token=` or the Authorization header).

    JSON frames, each with `server_time`; those from the chat's event stream also carry
    `event_id`, to resume from with `?last_event_id=` or a `resume` frame. Failures close the
    socket before any frame: 4401 (token), 4403 (not a participant), 4404 (no such chat),
    4400 (bad `last_event_id`), 4429 (`MAX_CONNECTIONS_PER_USER` WebSockets and event streams of the user
    already open); 4408 after 5 minutes without a client frame; 4401 once the
    token is revoked (logout) or the account deactivated, 4404 once the chat is deleted or
    archived (this API hides archived chats), 4403 once the user leaves or is removed from the chat.
    Client frames past `WS_CLIENT_FRAMES_PER_S` a second (a `resume` that re-reads the stream
    counts as 10) get a `rate_limited` error and are dropped; three times that many in a second
    close the socket 4429. At most three times that many wait to be served; more are dropped, with one
    `frames_dropped` error. A frame over 65,536 characters closes the socket 1009.
    """
    opened = open_chat_socket(ws, chat_id)
    if opened is None:
        return
    user, chat, cursor = opened
    settings, connection = runtime.current().settings, ConnectionLease(get_redis(), user.id)
    chat_key, chat_uuid = chat.id, chat.uuid

    def live_reply_ids() -> set[str]:
        with runtime.session() as s:
            return set(s.scalars(select(Message.uuid).where(Message.chat_id == chat_key,
                                                            Message.status == "PROCESSING")))

    def chat_hidden() -> bool:
        with runtime.session() as s:
            return s.scalar(select(Chat.status).where(Chat.id == chat_key)) not in chats.VISIBLE

    def stop(message: dict[str, Any]) -> dict[str, Any]:
        if not message.get("message_id"):
            return {"type": "error", "error": "stop needs the message_id of the reply to stop",
                    "error_code": "stop_failed"}
        with runtime.session() as s:
            try:
                current, member = chats.chat_for_member(s, user, chat_key)
                reply = replies.stop_reply(s, get_redis(), current, member, canonical_uuid(str(message["message_id"])))
            except ApiError as exc:
                return {"type": "error", "error": exc.detail, "error_code": "stop_failed"}
            return {"type": "stop_ack", "message_id": reply.uuid, "status": reply.status}

    def typing(_message: dict[str, Any]) -> dict[str, Any] | None:
        with runtime.session() as s:
            try:  # the chat may have been archived, or the user removed, since the socket opened
                current, member = chats.chat_for_member(s, user, chat_key)
                replies.check_may_send(member)
            except ApiError as exc:
                return {"type": "error", "error": exc.detail, "error_code": "typing_failed"}
            replies.announce_typing(get_redis(), current, user, typing_event(chat_uuid, user, events.iso_now()))
        return None

    ctx = SocketContext(
        chat_id=chat_key, chat_uuid=chat_uuid, user_uuid=user.uuid, username=user.username,
        idle_timeout_s=settings.ws_idle_timeout_s, replay_window_ms=settings.reply_job_timeout_s * 1000,
        session_ended=session_end_check(connection), token_check_s=settings.ws_token_check_s,
        frames_per_s=settings.ws_client_frames_per_s, refusal=access_refusal(user, chat_key, chats.VISIBLE),
        live_reply_ids=live_reply_ids, actions={"stop": stop, "typing": typing}, translate=uuid_view,
        chat_hidden=chat_hidden,
    )
    serve_chat_socket(ws, ChatSocket(ws, current_app.extensions["relay_hub"], get_redis(), ctx), cursor, connection)
