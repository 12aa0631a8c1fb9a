"""What the chat API (000) answers about chats, messages and participants, and ai-message.

The shapes are those of serializers.py, workers.events.message_view and the views.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from web.api.described import NUMERIC_ID, Answer
from workers.upstream import ERROR_TEXT

ChatType = Literal["DIRECT", "GROUP", "CHANNEL"]
MessageType = Literal["USER", "AI", "SYSTEM"]
MessageStatus = Literal["SENDING", "SENT", "DELIVERED", "READ", "PROCESSING", "CANCELLED", "FAILED"]
ParticipantRole = Literal["OWNER", "ADMIN", "MEMBER"]
BreakerState = Literal["CLOSED", "OPEN", "HALF_OPEN"]
# Why a reply failed (workers.upstream.ERROR_TEXT): in `ai_error` events and failed ai-message answers.
ReplyErrorCode = Literal[tuple(ERROR_TEXT)]


class ChatOut(Answer):
    id: str
    title: str
    description: str | None
    chat_type: ChatType
    ai_model: str = Field(description="The model the chat's replies use: its own, else the default")
    ai_persona: str | None
    message_count: int
    last_activity_at: datetime
    created_at: datetime
    is_private: bool
    tags: list[str] | None
    numeric_id: int = Field(description=NUMERIC_ID)


class MessageOut(Answer):
    id: str
    chat_id: str
    sender_id: str | None
    content: str
    message_type: MessageType
    ai_model_used: str | None
    tokens_used: int | None
    processing_time_ms: int | None
    status: MessageStatus
    created_at: datetime
    is_edited: bool


class ChatHistory(Answer):
    chat: ChatOut
    messages: list[MessageOut]
    participant_count: int


class TypingSent(Answer):
    status: Literal["sent"]
    timestamp: datetime


class StopAnswer(Answer):
    message_id: str
    status: MessageStatus
    stop_requested: bool


class ParticipantOut(Answer):
    user_id: str
    username: str
    role: ParticipantRole
    joined_at: datetime
    can_send_messages: bool
    can_upload_files: bool
    message_count: int
    last_read_at: datetime | None


class RemovedParticipant(Answer):
    chat_id: str
    user_id: str
    removed: Literal[True]


class ParticipantList(Answer):
    chat_id: str
    participants: list[ParticipantOut]
    total_participants: int


# POST /chats/{chat_id}/ai-message (ai_message.py)

class UserMessageSent(Answer):
    id: str
    content: str
    timestamp: datetime


class TokenUsage(Answer):
    input: int
    output: int
    total: int


class AiResponse(Answer):
    id: str
    content: str
    model_used: str
    processing_time_ms: int
    tokens_used: TokenUsage
    finish_reason: str
    timestamp: datetime
    via_langchain: Literal[True]


class ChatInfo(Answer):
    chat_id: str
    total_messages: int
    total_tokens_used: int


class ReplyServiceInfo(Answer):
    circuit_breaker_state: BreakerState
    service_health: Literal["healthy"]


class AiExchange(Answer):
    user_message: UserMessageSent
    ai_response: AiResponse
    chat_info: ChatInfo
    service_info: ReplyServiceInfo


class AiReply(Answer):
    """`stream: false`: the finished reply."""
    success: Literal[True]
    message: Literal["AI response generated successfully via LangChain service"]
    streaming: Literal[False]
    service_used: Literal["langchain"]
    data: AiExchange
    timestamp: datetime


class StreamServiceInfo(Answer):
    circuit_breaker_state: BreakerState
    langchain_available: Literal[True]


class AiStreamStarted(Answer):
    user_message_id: str
    ai_message_id: str
    chat_id: str
    model_used: str
    stream_via: Literal["websocket"]
    service_info: StreamServiceInfo


class AiReplyStarted(Answer):
    """`stream: true`: the reply was started and streams on the chat's WebSocket."""
    success: Literal[True]
    message: Literal["AI response generation started via LangChain"]
    streaming: Literal[True]
    service_used: Literal["langchain"]
    data: AiStreamStarted
    timestamp: datetime


class UnavailableServiceInfo(Answer):
    circuit_breaker_state: BreakerState
    service_health: Literal["unhealthy"]


class AiUnavailable(Answer):
    """The primary upstream's circuit is open (documented body)."""
    success: Literal[False]
    error: Literal["LangChain service temporarily unavailable"]
    error_code: Literal["langchain_service_unavailable"]
    service_info: UnavailableServiceInfo
    timestamp: datetime


class PartialReply(Answer):
    ai_message_id: str
    partial_content: str


class FailedServiceInfo(Answer):
    circuit_breaker_state: BreakerState


class AiReplyFailed(Answer):
    """The reply ended without being delivered; what it had streamed is kept."""
    success: Literal[False]
    error: str
    error_code: ReplyErrorCode | Literal["cancelled"]
    data: PartialReply
    service_info: FailedServiceInfo
    timestamp: datetime
