"""How the chats API (003) names and shows the canonical chat and message values.

Ids are integers; `user_id` and `session_id` are strings, as the document shows them.
The tables below are the ones written down in docs/api.md.
"""
from __future__ import annotations

from typing import Any

from models import Chat, Message
from models.message import INTERNAL_META
from workers.events import iso

CHAT_TYPE_OUT = {"DIRECT": "PERSONAL", "GROUP": "GROUP", "CHANNEL": "SYSTEM"}
CHAT_TYPE_IN = {shown: stored for stored, shown in CHAT_TYPE_OUT.items()}
CONTENT_TYPES = ("TEXT", "IMAGE", "FILE")
# Canonical statuses this document has no name for: a reply still streaming is SENDING,
# a stopped reply (final, with what was streamed) is DELIVERED.
MESSAGE_STATUS_OUT = {"PROCESSING": "SENDING", "CANCELLED": "DELIVERED"}


def chat_fields(title: str | None, rag_enabled: bool, chat_type: str, status: str,
                chat_metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The stored fields of a chat created here; chats made here start no AI replies."""
    return {"title": title or "", "rag_enabled": rag_enabled, "chat_type": CHAT_TYPE_IN[chat_type],
            "status": status, "meta": chat_metadata, "ai_enabled": False}


def chat_view(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.id,
        "user_id": str(chat.owner_id),
        "session_id": str(chat.id),
        "title": chat.title or None,
        "rag_enabled": chat.rag_enabled,
        "chat_type": CHAT_TYPE_OUT[chat.chat_type],
        "status": chat.status,
        "chat_metadata": chat.meta,
        "message_count": chat.message_count,
        "last_activity_at": iso(chat.last_activity_at),
        "created_at": iso(chat.created_at),
        "updated_at": iso(chat.updated_at),
        "uuid": chat.uuid,
    }


def message_role(is_user: bool, message_type: str) -> tuple[str, str]:
    """(role, content type) of a message posted here."""
    if message_type == "SYSTEM":
        return "system", "TEXT"
    return ("user" if is_user else "assistant"), message_type


def message_type(message: Message) -> str:
    """SYSTEM for system messages, else the content type (TEXT for kinds this document lacks)."""
    if message.role == "system":
        return "SYSTEM"
    return message.content_type if message.content_type in CONTENT_TYPES else "TEXT"


def message_status(status: str) -> str:
    return MESSAGE_STATUS_OUT.get(status, status)


def reactions_view(reactions: dict[str, list[int]]) -> dict[str, list[str]]:
    return {reaction: [str(user_id) for user_id in users] for reaction, users in reactions.items()}


def message_metadata(message: Message) -> dict[str, Any] | None:
    """The message's metadata without the reply pipeline's keys: they name who asked and hold
    the text of the asker's private document chunks, which other members must not read. None, as
    for a message stored without metadata, when those keys were all it had (an AI reply's)."""
    if message.meta is None:
        return None
    shown = {key: value for key, value in message.meta.items() if key not in INTERNAL_META}
    return shown if shown or not message.meta else None


def message_user_id(message: Message) -> str | None:
    """The sender's id; none for an assistant line, which this document knows only as the AI's
    (`is_user: false`), even when a user typed it elsewhere (002's `sender_type: "agent"`, 001's history)."""
    if message.sender_id is None or message.role == "assistant":
        return None
    return str(message.sender_id)


def message_view(message: Message, reactions: dict[str, list[int]]) -> dict[str, Any]:
    return {
        "id": message.id,
        "chat_id": message.chat_id,
        "user_id": message_user_id(message),
        "content": message.content,
        "is_user": message.role == "user",
        "message_type": message_type(message),
        "status": message_status(message.status),
        "message_metadata": message_metadata(message),
        "parent_message_id": message.parent_id,
        "reactions": reactions_view(reactions),
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
    }
