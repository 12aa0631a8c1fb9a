"""Reading a chat's messages."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Chat, Message, User
from workers import runtime


def recent_messages(db: Session, chat: Chat, limit: int, offset: int) -> list[tuple[Message, str | None]]:
    """The newest `limit` messages after skipping the newest `offset`, oldest first, with sender UUIDs."""
    rows = db.execute(
        select(Message, User.uuid)
        .outerjoin(User, User.id == Message.sender_id)
        .where(Message.chat_id == chat.id, Message.hidden.is_(False))
        .order_by(Message.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return [(message, sender) for message, sender in reversed(rows)]


def reply_ended(reply_uuid: str) -> bool:
    """Whether the reply is no longer being generated: ended, or deleted with its session.

    Asked from a streaming response, after the request's own session is gone: a session of its own."""
    with runtime.session() as db:
        return db.scalar(select(Message.status).where(Message.uuid == reply_uuid)) != "PROCESSING"


def message_in_chat(db: Session, chat: Chat, message_uuid: str) -> Message | None:
    return db.scalar(select(Message).where(Message.uuid == message_uuid, Message.chat_id == chat.id))
