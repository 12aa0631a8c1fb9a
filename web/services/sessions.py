"""001 sessions: a session is a chat; starting replies from OpenAI-style message lists."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from web.errors import ApiError, NotFound
from web.services import chats, replies
from workers import events

TITLE_CHARS = 60


def session_for(db: Session, user: User, session_id: int) -> tuple[Chat, Participant]:
    """The user's session, 404 (never 403) when it is not theirs."""
    try:
        return chats.chat_for_member(db, user, session_id)
    except ApiError as exc:
        raise NotFound("Chat session not found") from exc


def title_from(messages: list[Any]) -> str:
    first = next((m.content for m in messages if m.role == "user"), "New chat").strip()
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


def start(db: Session, redis: Redis, user: User, body: Any) -> tuple[Chat, Message, str]:
    """Create or continue a session, store the request's messages, start the reply.

    Returns the chat, the AI message and the stream cursor taken before the reply began.
    """
    settings = {"ai_model": body.model, "temperature": body.temperature}
    if body.max_tokens is not None:
        settings["max_tokens"] = body.max_tokens
    if body.session_id is None:
        chat = chats.create_chat(db, user, title=title_from(body.messages), **settings)
        member = chats.participant(db, chat, user)
    else:
        chat, member = session_for(db, user, body.session_id)
        for key, value in settings.items():
            setattr(chat, key, value)
        db.commit()
    *earlier, last = body.messages
    for message in earlier:
        replies.post_message(db, redis, chat, member, user, message.content, role=message.role, want_reply=False)
    cursor = events.last_event_id(redis, chat.id)
    _, reply = replies.post_message(db, redis, chat, member, user, last.content, want_reply=True)
    return chat, reply, cursor


def transcript(db: Session, chat_ids: list[int]) -> dict[int, list[dict[str, str]]]:
    """Role and content of each chat's visible messages, oldest first, in one query."""
    found: dict[int, list[dict[str, str]]] = {chat_id: [] for chat_id in chat_ids}
    rows = db.execute(
        select(Message.chat_id, Message.role, Message.content)
        .where(Message.chat_id.in_(chat_ids), Message.hidden.is_(False)).order_by(Message.id)
    )
    for chat_id, role, content in rows:
        found[chat_id].append({"role": role, "content": content})
    return found


def history(db: Session, user: User, page: int, page_size: int, start_date: datetime | None,
            end_date: datetime | None, model: str | None) -> tuple[int, list[Chat]]:
    query = (select(Chat).join(Participant, Participant.chat_id == Chat.id)
             .where(Participant.user_id == user.id, Chat.status.in_(chats.VISIBLE)))
    if start_date is not None:
        query = query.where(Chat.created_at >= start_date)
    if end_date is not None:
        query = query.where(Chat.created_at <= end_date)
    if model:
        query = query.where(Chat.ai_model == model)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    page_rows = db.scalars(query.order_by(Chat.last_activity_at.desc(), Chat.id.desc())
                           .limit(page_size).offset((page - 1) * page_size))
    return total, list(page_rows)


def delete_session(db: Session, redis: Redis, user: User, session_id: int) -> None:
    """Delete for good, with messages and files; only the owner may (404 for anyone else)."""
    chat, _ = session_for(db, user, session_id)
    delete_owned_chat(db, redis, user, chat)


def delete_owned_chat(db: Session, redis: Redis, user: User, chat: Chat) -> None:
    """Hard delete (001 and 004 document one): the chat, its messages, files and event stream."""
    if chat.owner_id != user.id:
        raise NotFound("Chat session not found")
    running = db.scalars(select(Message.uuid).where(Message.chat_id == chat.id, Message.status == "PROCESSING"))
    for reply_uuid in running:  # a reply streaming into a deleted chat would go on spending the upstream
        replies.ask_to_stop(redis, reply_uuid)
    db.execute(delete(Message).where(Message.chat_id == chat.id))
    db.delete(chat)
    db.commit()
    redis.delete(events.chat_stream_key(chat.id))


def reply_usage(reply: Message) -> dict[str, int | None]:
    return {"prompt_tokens": reply.tokens_in, "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_used}

