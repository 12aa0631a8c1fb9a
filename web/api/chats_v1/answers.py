"""What the chats API (003) answers, for /openapi.json: the REST bodies of serializers.py and the
frames its WebSocket sends (socket.py, and the relay in web/realtime/chat_socket.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from web.api.chats_v1.schemas import ChatStatus, ChatType, MessageStatus, MessageType
from web.api.described import UUID_ID, Answer


class ChatOut(Answer):
    id: int
    user_id: str = Field(description="The owner's integer id, as a string")
    session_id: str = Field(description="The chat's own id, as a string")
    title: str | None
    rag_enabled: bool
    chat_type: ChatType
    status: ChatStatus
    chat_metadata: dict[str, Any] | None
    message_count: int
    last_activity_at: datetime
    created_at: datetime
    updated_at: datetime
    uuid: str = Field(description=UUID_ID)


class MessageOut(Answer):
    id: int
    chat_id: int
    user_id: str | None = Field(description="The sender's integer id as a string; null for assistant messages")
    content: str
    is_user: bool
    message_type: MessageType
    status: MessageStatus = Field(description="A reply still streaming is SENDING; a stopped one DELIVERED")
    message_metadata: dict[str, Any] | None
    parent_message_id: int | None
    reactions: dict[str, list[str]] = Field(description="Each reaction → the ids (strings) of the users who "
                                                        "made it, oldest first")
    created_at: datetime
    updated_at: datetime


class Welcome(Answer):
    """The first frame, once the socket is authenticated."""
    type: Literal["welcome"]
    message: Literal["Connected to chat"]
    chat_id: int
    user_id: str
    username: str
    timestamp: datetime
    last_event_id: str = Field(description="The stream position the socket starts from")
    server_time: datetime


class NewMessage(Answer):
    """A message posted on any surface; an AI reply arrives once, when it has ended."""
    type: Literal["new_message"]
    chat_id: int
    message: MessageOut
    event_id: str
    server_time: datetime


class MessageStatusChanged(Answer):
    type: Literal["message_status_changed"]
    chat_id: int
    message_id: int
    status: MessageStatus
    previous_status: MessageStatus
    user_id: str = Field(description="Who changed it")
    timestamp: datetime
    event_id: str
    server_time: datetime


class ReactionAdded(Answer):
    type: Literal["reaction_added"]
    chat_id: int
    message_id: int
    user_id: str = Field(description="Who reacted")
    reaction: str
    timestamp: datetime
    event_id: str
    server_time: datetime


class ReactionRemoved(ReactionAdded):
    type: Literal["reaction_removed"]


class MessageStatusAck(Answer):
    """The answer to this client's `message_status` frame."""
    type: Literal["message_status_ack"]
    message_id: int
    status: MessageStatus
    server_time: datetime


class Pong(Answer):
    type: Literal["pong"]
    timestamp: Any = Field(description="The `timestamp` of the client's ping, as sent; the server's time "
                                       "(ISO 8601) when it sent none")
    server_time: datetime


class SocketError(Answer):
    """A client frame that could not be served; the socket stays open. `events_lost`: the socket resumes from
    an event the chat's capped stream no longer holds, so events after it may be lost (sent before the replay)."""
    type: Literal["error"]
    error: str
    error_code: Literal["invalid_message", "invalid_cursor", "events_lost", "rate_limited", "frames_dropped",
                        "unknown_type", "status_failed"]
    server_time: datetime

