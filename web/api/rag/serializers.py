"""How the RAG API (004) shows documents, chunks, sessions, messages and datasets (UUID ids)."""
from __future__ import annotations

import re
from typing import Any

from models import Dataset, Document, DocumentChunk, Message
from models.message import INTERNAL_META
from web.services.rag_documents import FILE_TYPES, status
from web.services.replies import chat_model
from web.services.rag_sessions import SessionInfo, stored_citation
from workers.events import iso

# "[2]", and several excerpts in one bracket as models often write them: "[1, 3]".
CITE_MARK = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# Set from the message itself: a client's metadata keys of these names are not shown. The
# pipeline's INTERNAL_META are shown as their own fields (`search` only on a RAG reply) or not at all.
OWN_META = frozenset({"status", "model", "error_code"})


def document_view(doc: Document, chunk_count: int, dataset_ids: list[str], content: str | None = None) -> dict:
    meta = doc.meta or {}
    return {
        "id": doc.uuid,
        "filename": doc.filename,
        "content": content if content is not None else "",
        "created_at": iso(doc.created_at),
        "metadata": {
            "filename": doc.filename,
            "file_type": FILE_TYPES.get(doc.mime_type, doc.mime_type),
            "page_count": doc.page_count,
            "additional_metadata": {
                "mime_type": doc.mime_type, "file_size": doc.file_size, "chunk_count": chunk_count,
                "embedding_model": meta.get("embedding_model"), "indexing_note": meta.get("indexing_note"),
                "dataset_ids": dataset_ids,
            },
        },
        "status": status(doc),
        "error": doc.error if doc.status == "FAILED" else None,
    }


def chunk_view(doc: Document, chunk: DocumentChunk, total: int) -> dict[str, Any]:
    return {
        "document_id": doc.uuid,
        "chunk_index": chunk.chunk_index,
        "content": chunk.content,
        "metadata": {
            "filename": doc.filename,
            "document_id": doc.uuid,
            "chunk_index": chunk.chunk_index,
            "page_number": chunk.page_number,
            "total_chunks": total,
            "additional_metadata": {"chunk_id": chunk.uuid, "token_count": chunk.token_count,
                                    "embedding_model": chunk.embedding_model},
        },
    }


def session_view(info: SessionInfo) -> dict[str, Any]:
    chat = info.chat
    meta = dict(chat.meta or {})
    # The document's memory_key is a string; any other value a client stored stays in metadata.
    memory_key = meta.pop("memory_key") if isinstance(meta.get("memory_key"), str) else None
    return {
        "id": chat.uuid,
        "user_id": info.owner_uuid,
        "system_prompt": chat.system_prompt,
        "created_at": iso(chat.created_at),
        "updated_at": iso(chat.updated_at),
        "title": chat.title or None,  # chats made untitled elsewhere store ""
        "memory_key": memory_key,
        "last_context": info.last_context,
        "metadata": {**meta, "rag_enabled": chat.rag_enabled, "ai_model": chat_model(chat),
                     "message_count": chat.message_count, "numeric_id": chat.id},
        "relevant_documents": info.relevant_documents,
    }


def cited(message: Message, deleted: set[str]) -> list[dict[str, Any]] | None:
    """The sources the answer cites by their `[n]` markers (None when it had no sources)."""
    if not message.sources:
        return None
    marks = {int(n) for listed in CITE_MARK.findall(message.content or "") for n in listed.split(",")}
    return [stored_citation(s, deleted) for n, s in enumerate(message.sources, start=1) if n in marks]


def sources(message: Message, deleted: set[str]) -> list[dict[str, Any]] | None:
    """The chunks the reply was given as context, as stored (with their scores), marked as citations are."""
    if message.sources is None:
        return None
    return [{**s, **stored_citation(s, deleted)} for s in message.sources]


def message_view(message: Message, session_uuid: str, user_uuids: dict[int, str],
                 deleted: set[str]) -> dict[str, Any]:
    """`deleted`: the documents the session cited that were deleted since."""
    meta = message.meta or {}
    # Whoever wrote it (a user's system or assistant message too); a generated reply: who asked.
    author = message.sender_id if message.sender_id is not None else meta.get("requested_by")
    shown = {k: v for k, v in meta.items() if k not in INTERNAL_META | OWN_META}
    shown.update(status=message.status, model=message.model)
    if message.sources is not None and "search" in meta:  # a RAG reply: retrieval recorded both
        shown["search"] = meta["search"]
    if message.error_code:
        shown["error_code"] = message.error_code
    return {
        "id": message.uuid,
        "session_id": session_uuid,
        "role": message.role,
        "content": message.content,
        "metadata": shown,
        "created_at": iso(message.created_at),
        "memory_key": None,
        "sources": sources(message, deleted),
        "context_ids": meta.get("context_ids"),
        "relevance_score": meta.get("relevance_score"),
        "user_id": user_uuids.get(author),
        "cited_documents": cited(message, deleted),
    }


def dataset_view(dataset: Dataset, document_ids: list[str]) -> dict[str, Any]:
    return {"id": dataset.uuid, "name": dataset.name, "description": dataset.description,
            "document_ids": document_ids, "document_count": len(document_ids),
            "created_at": iso(dataset.created_at), "updated_at": iso(dataset.updated_at)}
