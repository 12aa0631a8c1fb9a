"""Request bodies and query strings of the chat API, with the documented limits."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from models.base import MAX_KEY
from web.api.parsing import Metadata, NotBlank, QueryModel, RequestModel, UuidKey

# Bounded: every chat list carries each chat's tags.
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50)]


class CreateChatRequest(RequestModel):
    title: NotBlank = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    chat_type: Literal["DIRECT", "GROUP", "CHANNEL"] = "DIRECT"
    ai_model: str = Field(default="gpt-3.5-turbo", min_length=1, max_length=100)
    ai_persona: str | None = Field(default=None, max_length=2000)
    system_prompt: str | None = Field(default=None, max_length=20000)
    temperature: float = Field(default=0.7, ge=0.0, le=1.0)
    max_tokens: int = Field(default=2048, ge=1, le=32000)
    is_private: bool = False
    tags: list[Tag] | None = Field(default=None, max_length=50)


class ListChatsQuery(QueryModel):
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_KEY)


class HistoryQuery(QueryModel):
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_KEY)


class SendMessageRequest(RequestModel):
    # Empty content is a documented 400, so only the upper bound is a validation error.
    content: str = Field(max_length=50000)
    message_type: Literal["USER", "AI", "SYSTEM"] = "USER"
    reply_to_id: UuidKey | None = None
    message_metadata: Metadata = None


class AddParticipantRequest(RequestModel):
    user_id: UuidKey = Field(min_length=1, max_length=64)
    role: Literal["ADMIN", "MEMBER"] = "MEMBER"
    can_send_messages: bool | None = None
    can_upload_files: bool | None = None


class AiMessageRequest(RequestModel):
    # Empty is a 400 like blank (as for /messages), so only the upper bound is a validation error.
    message: str = Field(max_length=50000)
    stream: bool = False
    save_to_history: bool = True


class ServiceTestRequest(RequestModel):
    message: str = Field(default="Hello! This is a test message.", min_length=1, max_length=50000)
    model: str = Field(default="gpt-3.5-turbo", min_length=1, max_length=100)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    system_prompt: str | None = Field(default=None, max_length=20000)
