"""How the chat API shows chats, messages and participants (UUID ids, upper-case enums)."""
from __future__ import annotations

from typing import Any

from models import Chat, Participant, User
from web.services.replies import chat_model
from workers.events import iso


def chat_view(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.uuid,
        "title": chat.title,
        "description": chat.description,
        "chat_type": chat.chat_type,
        "ai_model": chat_model(chat),
        "ai_persona": chat.ai_persona,
        "message_count": chat.message_count,
        "last_activity_at": iso(chat.last_activity_at),
        "created_at": iso(chat.created_at),
        "is_private": chat.is_private,
        "tags": chat.tags,
        "numeric_id": chat.id,
    }


def participant_view(member: Participant, user: User, message_count: int) -> dict[str, Any]:
    return {
        "user_id": user.uuid,
        "username": user.username,
        "role": member.role,
        "joined_at": iso(member.joined_at),
        "can_send_messages": member.can_send_messages,
        "can_upload_files": member.can_upload_files,
        "message_count": message_count,
        "last_read_at": iso(member.last_read_at),
    }
