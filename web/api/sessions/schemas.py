"""Request bodies and query strings of the sessions API (001)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from models.base import MAX_KEY
from web.api.parsing import IsoDateTime, Metadata, NotBlank, QueryModel, RequestModel, not_null


class ChatMessageIn(RequestModel):
    role: Literal["user", "assistant", "system"]
    content: str = Field(min_length=1, max_length=50000)


class StreamRequest(RequestModel):
    model: str = Field(min_length=1, max_length=100)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200, description=(
        "The last one the user's. With `session_id`: only the new messages, or the session's conversation "
        "as history shows it (all of it, or a window: an optional first system message, then a run repeating "
        "the conversation's end and holding a reply; whitespace aside; a failed or streaming reply may be "
        "left out; user messages must be the requester's) followed by the new ones; only what follows is "
        "stored. A resend adding nothing answers again the last message whose reply failed; otherwise it is 422."))
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=32000)
    stream: bool = True
    session_id: int | None = Field(default=None, ge=1, le=MAX_KEY)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, value: list[ChatMessageIn]) -> list[ChatMessageIn]:
        if value[-1].role != "user":
            raise ValueError("the last message must have role 'user'")
        return value


class SwitchModelRequest(RequestModel):
    session_id: int = Field(ge=1, le=MAX_KEY)
    model: str = Field(min_length=1, max_length=100)


class HistoryQuery(QueryModel):
    page: int = Field(default=1, ge=1, le=MAX_KEY)
    page_size: int = Field(default=10, ge=1, le=100)
    start_date: IsoDateTime | None = None
    end_date: IsoDateTime | None = None
    model: str | None = Field(default=None, max_length=100)


class PromptIn(RequestModel):
    title: NotBlank = Field(min_length=1, max_length=200)
    content: NotBlank = Field(min_length=1, max_length=20000)
    scenario: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    metadata: Metadata = None


class PromptUpdate(RequestModel):
    title: NotBlank | None = Field(default=None, min_length=1, max_length=200)
    content: NotBlank | None = Field(default=None, min_length=1, max_length=20000)
    scenario: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    metadata: Metadata = None

    # Left out, a field keeps its value; given as null it is refused (the columns are NOT NULL).
    _not_null = field_validator("title", "content")(not_null)


class PromptQuery(QueryModel):
    scenario: str | None = Field(default=None, max_length=100)
    include_templates: bool = True
    search: str | None = Field(default=None, max_length=200)
    page: int = Field(default=1, ge=1, le=MAX_KEY)
    page_size: int = Field(default=20, ge=1, le=100)


class PreviewRequest(RequestModel):
    prompt_id: int | None = Field(default=None, ge=1, le=MAX_KEY)
    content: NotBlank | None = Field(default=None, min_length=1, max_length=20000)
    variables: dict[str, Any] = Field(default_factory=dict)
    model: str | None = Field(default=None, max_length=100)


class UploadForm(BaseModel):
    """The multipart/form-data body of an upload (described for /openapi.json; read with request.files)."""
    file: str = Field(description="The PDF, at most 10 MB", json_schema_extra={"contentMediaType": "application/pdf"})
