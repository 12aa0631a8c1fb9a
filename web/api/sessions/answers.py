"""What the sessions API (001) answers, for /openapi.json: the shapes serializers.py and the views build."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from web.api.described import UUID_ID, Answer

DocumentStatus = Literal["PENDING", "PROCESSING", "READY", "FAILED"]

STREAM_FORMAT = (
    "`stream: true` (the default): `text/event-stream`, one event per token: `id: <session>:<reply>:<stream id>` "
    "(`...:<stream id>:<n>` for all but the last of the tokens one stream entry carries) and `data: <token>`, the raw token text (not JSON; a token with line breaks is sent as one `data:` line per "
    "line, which a client joins with \"\\n\"). `: keep-alive` comment lines after `SSE_KEEPALIVE_S` of silence. "
    "The stream ends with `data: [DONE]`; a failed reply first sends `event: error` whose data is JSON "
    "`{\"error\": \"...\", \"error_code\": \"...\"}`. Repeating the request with `Last-Event-ID: <last id>` "
    "resumes the same reply after that event; from an event the chat's capped stream no longer holds, an "
    "`event: error` with `error_code` `events_lost` (no `id:`) comes first and the stream goes on: reload the "
    "session's history. Once the access token is revoked (logout), the stream ends with an `event: error` "
    "`session_ended` and no `[DONE]`; once an admin deactivates the account, the same with `account_deactivated`; "
    "once its user is removed from the session's chat, with an `event: error` `access_revoked` and no `[DONE]`. "
    "`stream: false`: the whole reply as one JSON object. "
    "Either way the `X-Session-Id` header names the session.")

# The document answers a bad query string with 400 (bodies stay 422): /openapi.json's own
# "invalid input" entry says 422 for every input of this surface.


class TranscriptMessage(Answer):
    role: Literal["user", "assistant", "system"]
    content: str


class Usage(Answer):
    """The upstream's token counts (null when it sent none, as for a stopped reply)."""
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None


class WholeReply(Answer):
    """`stream: false`: the reply once it has ended (CANCELLED when it was stopped meanwhile)."""
    session_id: int
    message_id: int
    model: str
    role: Literal["assistant"]
    content: str
    finish_reason: str = Field(description="The upstream's (`stop`, `length`...), or `cancelled`")
    status: Literal["DELIVERED", "CANCELLED"]
    usage: Usage


class FailedReply(WholeReply):
    """`stream: false` and the reply failed: what was streamed before it did, and why."""
    finish_reason: str | None
    status: Literal["FAILED"]
    detail: str = Field(description="`The reply failed: <error_code>`")


class SwitchedModel(Answer):
    session_id: int
    model: str
    messages: list[TranscriptMessage]
    title: str


class SessionOut(Answer):
    id: int
    user_id: int = Field(description="The session's owner")
    application_id: int | None = Field(description="From the chat's metadata, else null")
    model: str | None = Field(description="Null for a chat made on another surface without a model")
    title: str
    messages: list[TranscriptMessage]
    created_at: datetime
    updated_at: datetime = Field(description="The session's last activity")
    uuid: str = Field(description=UUID_ID)


class HistoryPage(Answer):
    total: int
    page: int
    page_size: int
    sessions: list[SessionOut]


class SessionDeleted(Answer):
    message: Literal["Session deleted successfully"]


class FileMetadata(Answer):
    page_count: int | None


class FileOut(Answer):
    id: int
    filename: str
    file_size: int
    mime_type: str
    extracted_text: str | None = Field(description="Null until the file is READY")
    metadata: FileMetadata
    status: DocumentStatus
    error: str | None = Field(description="Why parsing FAILED")
    created_at: datetime
    document_id: uuid.UUID = Field(description="The file's id on the RAG API: `DELETE /documents/{document_id}` "
                                               "deletes it alone, freeing its room in the uploader's limits")


class FileUploaded(Answer):
    file: FileOut
    message: str = Field(description="`File uploaded successfully`; `File uploaded, but its text could not be "
                                     "read: <error>` (status FAILED); or, when parsing had not ended within 5 s, "
                                     "that its text is still being read; for a duplicate, `This file was "
                                     "already uploaded to this session; it was not stored again`")
    duplicate: bool = Field(description="The user had uploaded the same bytes to this session (and that file "
                                        "did not fail): `file` is that file, and nothing was stored anew")


class FileList(Answer):
    files: list[FileOut]


class OneFile(Answer):
    file: FileOut


class PromptOut(Answer):
    id: int
    title: str
    content: str
    scenario: str | None
    description: str | None
    metadata: dict[str, Any] = Field(description="The prompt's own metadata, as given (`{}` when none)")
    is_template: bool = Field(description="A read-only system template")
    usage_count: int
    created_at: datetime
    updated_at: datetime


class PromptPage(Answer):
    items: list[PromptOut]
    total: int
    page: int
    page_size: int


class PromptDeleted(Answer):
    message: Literal["Prompt deleted successfully"]


class Preview(Answer):
    preview: str
    tokens_used: int | None
    model_used: str
