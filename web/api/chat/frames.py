"""The JSON frames the chat WebSocket (000) sends, as /openapi.json describes them (`x-events`).

Every frame carries `server_time`; the events relayed from the chat's event stream also carry
`event_id`, the cursor to resume from. The stream is the chat's, whichever surface wrote to
it, so the 003 surface's status and reaction events and the RAG replies' `rag_status` come
here too (with UUIDs).
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from web.api.chat.answers import MessageOut, MessageStatus, ParticipantOut, ReplyErrorCode
from web.api.described import Answer


class Frame(Answer):
    server_time: datetime


class Relayed(Frame):
    event_id: str


class Welcome(Frame):
    """The first frame; `last_event_id` is the position the socket starts from."""
    type: Literal["welcome"]
    message: Literal["Connected to chat"]
    chat_id: str
    user_id: str
    username: str
    timestamp: datetime
    last_event_id: str


class NewMessage(Relayed):
    type: Literal["new_message"]
    message: MessageOut


class StreamingMessage(MessageOut):
    status: Literal["PROCESSING"]
    is_streaming: Literal[True]


class ReplyStart(Relayed):
    type: Literal["ai_response_start"]
    message: StreamingMessage


class ReplyChunk(Relayed):
    """One piece of a reply (`chunk`) and the reply so far (`full_content`)."""
    type: Literal["ai_response_chunk"]
    message_id: str
    chat_id: str
    chunk: str
    full_content: str


class EndedMessage(MessageOut):
    """`service_used`: the upstream that answered (none when stopped before one did)."""
    status: Literal["DELIVERED", "CANCELLED"]
    is_streaming: Literal[False]
    service_used: Literal["langchain", "openai"] | None


class FailedMessage(MessageOut):
    status: Literal["FAILED"]
    is_streaming: Literal[False]


class ReplyComplete(Relayed):
    """A reply ended DELIVERED or CANCELLED (stopped, keeping its text so far)."""
    type: Literal["ai_response_complete"]
    message: EndedMessage


class ReplyError(Relayed):
    """A reply ended FAILED, keeping what it had streamed."""
    type: Literal["ai_error"]
    error: str
    error_code: ReplyErrorCode
    chat_id: str
    message_id: str
    message: FailedMessage
    timestamp: datetime


class RagStatus(Relayed):
    """Progress of a RAG reply's document search, before its tokens."""
    type: Literal["rag_status"]
    message_id: str
    status: str


class TypingIndicator(Relayed):
    type: Literal["typing_indicator"]
    chat_id: str
    user_id: str
    username: str
    timestamp: datetime


class ParticipantAdded(Relayed):
    type: Literal["participant_added"]
    chat_id: str
    participant: ParticipantOut
    timestamp: datetime


class ParticipantRemoved(Relayed):
    """A participant left or was removed; that user's own sockets on the chat close 4403 instead."""
    type: Literal["participant_removed"]
    chat_id: str
    user_id: str
    timestamp: datetime


class MessageStatusChanged(Relayed):
    """A message's delivery status moved forward (003); `user_id` made the change."""
    type: Literal["message_status_changed"]
    chat_id: str
    message_id: str
    status: MessageStatus
    previous_status: MessageStatus
    user_id: str
    timestamp: datetime


class Reaction(Relayed):
    """A reaction added or removed on a message (003); `user_id` made the change."""
    type: Literal["reaction_added", "reaction_removed"]
    chat_id: str
    message_id: str
    user_id: str
    reaction: str
    timestamp: datetime


class Pong(Frame):
    """The answer to `ping` / `heartbeat`, echoing the client's `timestamp` (else the server's time)."""
    type: Literal["pong"]
    timestamp: str


class StopAck(Frame):
    """The answer to `stop`: the reply's status as the stop was asked (it ends within a second)."""
    type: Literal["stop_ack"]
    message_id: str
    status: MessageStatus


class SocketError(Frame):
    """A client frame that could not be handled; or `events_lost`: the socket resumes from an event the chat's
    capped stream no longer holds, so events after it may be lost (sent before the replay)."""
    type: Literal["error"]
    error: str
    error_code: Literal["invalid_message", "invalid_cursor", "events_lost", "rate_limited", "frames_dropped",
                        "unknown_type", "stop_failed", "typing_failed"]

