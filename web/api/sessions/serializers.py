"""How the sessions API (001) shows sessions, files and prompts: integer ids."""
from __future__ import annotations

from typing import Any

from models import Chat, Document, Prompt
from workers.events import iso


def session_view(chat: Chat, messages: list[dict[str, str]], model: str) -> dict[str, Any]:
    """`model`: the one its replies use (the default for a chat made without one)."""
    return {
        "id": chat.id, "user_id": chat.owner_id, "application_id": application_id(chat),
        "model": model, "title": chat.title, "messages": messages,
        "created_at": iso(chat.created_at), "updated_at": iso(chat.last_activity_at), "uuid": chat.uuid,
    }


def application_id(chat: Chat) -> int | None:
    """The integer `application_id` of the chat's metadata (set through other surfaces), else None."""
    value = (chat.meta or {}).get("application_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def file_view(doc: Document) -> dict[str, Any]:
    ready = doc.status == "READY"
    return {
        "id": doc.id, "filename": doc.filename, "file_size": doc.file_size, "mime_type": doc.mime_type,
        "extracted_text": doc.extracted_text if ready else None,
        "metadata": {"page_count": doc.page_count}, "status": doc.status, "error": doc.error,
        "created_at": iso(doc.created_at), "document_id": doc.uuid,
    }


def prompt_view(prompt: Prompt) -> dict[str, Any]:
    return {
        "id": prompt.id, "title": prompt.title, "content": prompt.content, "scenario": prompt.scenario,
        "description": prompt.description, "metadata": prompt.meta or {}, "is_template": prompt.is_template,
        "usage_count": prompt.usage_count, "created_at": iso(prompt.created_at), "updated_at": iso(prompt.updated_at),
    }
