"""What the RAG API (004) answers: the bodies of web/api/rag/serializers.py and the events of relay.py."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from web.api.described import NUMERIC_ID, Answer, sometimes

MessageStatus = Literal["SENDING", "SENT", "DELIVERED", "READ", "PROCESSING", "CANCELLED", "FAILED"]


class Citation(Answer):
    """A chunk given to the model as context, as the document shows a citation."""
    document_id: uuid.UUID
    filename: str
    chunk_index: int
    page_number: int | None


class Source(Citation):
    relevance_score: float


class StoredCitation(Citation):
    """A citation shown after the reply, kept when its document is deleted (so `[n]` still matches)."""
    document_deleted: bool  # the document was deleted since: its chunks answer 404


class StoredSource(StoredCitation):
    relevance_score: float


class Search(Answer):
    """How a retrieval searched: the requested type, what it could use, and notes on falling back."""
    type: Literal["SIMILARITY", "HYBRID", "MMR"]
    mode: Literal["vector", "full-text", "none"]  # none: the search failed or had no one to search for
    notes: list[str]


class LastContext(Answer):
    """The latest retrieval of a session: the context of its last RAG reply."""
    message_id: uuid.UUID
    query: str | None
    search: Search | None
    context_ids: list[uuid.UUID]
    relevance_score: float | None
    created_at: datetime


class SessionMetadata(Answer):
    """The chat's own metadata (any keys a client stored) plus these."""
    model_config = ConfigDict(extra="allow")

    rag_enabled: bool
    ai_model: str  # the model the session's replies use: its own, else the default (DEFAULT_AI_MODEL)
    message_count: int
    numeric_id: int = Field(description=NUMERIC_ID)


class Session(Answer):
    id: uuid.UUID
    user_id: uuid.UUID
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime
    title: str | None
    memory_key: str | None
    last_context: LastContext | None
    metadata: SessionMetadata
    relevant_documents: list[StoredCitation]


class SessionList(Answer):
    sessions: list[Session]
    total_count: int


class MessageMetadata(Answer):
    """The message's metadata (any keys its sender stored, without the pipeline's own) plus these."""
    model_config = ConfigDict(extra="allow")

    status: MessageStatus
    model: str | None
    search: Search = sometimes()  # on RAG replies
    error_code: str = sometimes()  # on failed replies


class Message(Answer):
    id: uuid.UUID
    session_id: uuid.UUID
    role: Literal["user", "assistant", "system"]
    content: str
    metadata: MessageMetadata
    created_at: datetime
    memory_key: None
    sources: list[StoredSource] | None
    context_ids: list[uuid.UUID] | None
    relevance_score: float | None
    user_id: uuid.UUID | None
    cited_documents: list[StoredCitation] | None


class SessionDetail(Answer):
    session: Session
    messages: list[Message]


class SessionDeleted(Answer):
    message: Literal["Chat session deleted successfully"]


class DocumentExtras(Answer):
    mime_type: Literal["application/pdf", "text/plain", "text/markdown"]
    file_size: int
    chunk_count: int
    embedding_model: str | None
    indexing_note: str | None
    dataset_ids: list[uuid.UUID]


class DocumentMetadata(Answer):
    filename: str
    file_type: Literal["pdf", "text", "markdown"]
    page_count: int | None
    additional_metadata: DocumentExtras


class Document(Answer):
    id: uuid.UUID
    filename: str
    content: str  # the extracted text; empty in lists and before parsing
    created_at: datetime
    metadata: DocumentMetadata
    status: Literal["processing", "ready", "failed"]
    error: str | None


class UploadedDocument(Document):
    duplicate: bool = Field(description="The user's library held the same bytes already (in a document that did "
                                        "not fail): this is that document, and nothing was stored anew")


class DocumentList(Answer):
    documents: list[Document]
    total_count: int


class DocumentDeleted(Answer):
    message: Literal["Document deleted successfully"]


class ChunkExtras(Answer):
    chunk_id: uuid.UUID
    token_count: int
    embedding_model: str | None


class ChunkMetadata(Answer):
    filename: str
    document_id: uuid.UUID
    chunk_index: int
    page_number: int | None
    total_chunks: int
    additional_metadata: ChunkExtras


class Chunk(Answer):
    document_id: uuid.UUID
    chunk_index: int
    content: str
    metadata: ChunkMetadata


class SessionDocument(Answer):
    document_id: uuid.UUID
    chunk_index: int
    document_name: str
    page_number: int | None
    document_deleted: bool  # the document was deleted since: its chunks answer 404


class SessionDocuments(Answer):
    documents: list[SessionDocument]
    total_count: int


class Dataset(Answer):
    id: uuid.UUID
    name: str
    description: str | None
    document_ids: list[uuid.UUID]
    document_count: int
    created_at: datetime
    updated_at: datetime


class DatasetList(Answer):
    datasets: list[Dataset]
    total_count: int


# The events of /chat/send: the `data:` JSON of each unnamed SSE event.

class SessionEvent(Answer):
    """First, for a new session only."""
    type: Literal["session"]
    session_id: uuid.UUID
    title: str


class StatusEvent(Answer):
    """Progress: searching, search notes, what was found, then "Generating response"."""
    type: Literal["status"]
    status: str


class TokenEvent(Answer):
    type: Literal["token"]
    token: str


class CitationEvent(Source):
    """One per chunk given as context, after the last token; `marker` is its `[n]`."""
    type: Literal["citation"]
    marker: int


class ErrorEvent(Answer):
    """The reply failed (codes as in the chat WebSocket); `done` follows. Or, with `events_lost` and
    before the replay, a resume from an event the chat's capped stream no longer holds: the rest follows.
    Or, with `session_ended`, the access token was revoked (logout), with `account_deactivated`, an admin
    deactivated the account, or with `access_revoked`, the user was removed from the session's chat: the
    stream ends, without `done`."""
    type: Literal["error"]
    error: str
    error_code: str


class DoneEvent(Answer):
    """Last: the stored reply. DELETED when the session was deleted while streaming."""
    type: Literal["done"]
    content: str
    citations: list[Citation]
    status: Literal["DELIVERED", "CANCELLED", "FAILED", "DELETED"]

