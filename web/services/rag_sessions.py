"""004 sessions: the user's chats with what their replies cited, and deleting one for good."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from web.services import chats
from web.services.rag_chat import session_for
from web.services.rag_documents import deleted_of
from web.services.sessions import delete_owned_chat
from workers import events


@dataclass
class SessionInfo:
    chat: Chat
    owner_uuid: str
    relevant_documents: list[dict[str, Any]] = field(default_factory=list)
    last_context: dict[str, Any] | None = None
    deleted_documents: set[str] = field(default_factory=set)  # cited, then deleted


def sessions_page(db: Session, user: User, limit: int, offset: int) -> tuple[int, list[SessionInfo]]:
    """The user's visible chats, most recently active first, with what they cited."""
    member_of = (select(Chat).join(Participant, Participant.chat_id == Chat.id)
                 .where(Participant.user_id == user.id, Chat.status.in_(chats.VISIBLE)))
    total = db.scalar(select(func.count()).select_from(member_of.subquery())) or 0
    page = list(db.scalars(member_of.order_by(Chat.last_activity_at.desc(), Chat.id.desc())
                           .limit(limit).offset(offset)))
    return total, describe(db, page)


def describe(db: Session, page: list[Chat]) -> list[SessionInfo]:
    """Owner ids, cited chunks and the latest retrieval of each chat, in three queries."""
    owners = dict(db.execute(select(User.id, User.uuid).where(User.id.in_({c.owner_id for c in page}))).all())
    infos = {c.id: SessionInfo(c, owners.get(c.owner_id, "")) for c in page}
    rows = db.execute(
        select(Message.chat_id, Message.uuid, Message.sources, Message.meta, Message.created_at)
        .where(Message.chat_id.in_(list(infos)), Message.role == "assistant", Message.sources.is_not(None))
        .order_by(Message.id)
    )
    seen: dict[int, dict[tuple[str, int], dict[str, Any]]] = {chat_id: {} for chat_id in infos}
    for chat_id, message_uuid, sources, meta, created_at in rows:
        for source in sources or []:
            seen[chat_id].setdefault((source["document_id"], source["chunk_index"]), source)
        infos[chat_id].last_context = last_context(message_uuid, meta or {}, created_at)
    gone = deleted_of(db, {document_id for cited in seen.values() for document_id, _ in cited})
    for chat_id, info in infos.items():
        info.deleted_documents = {document_id for document_id, _ in seen[chat_id]} & gone
        info.relevant_documents = [stored_citation(s, gone) for s in seen[chat_id].values()]
    return [infos[c.id] for c in page]


def citation(source: dict[str, Any]) -> dict[str, Any]:
    return {key: source.get(key) for key in ("document_id", "filename", "chunk_index", "page_number")}


def stored_citation(source: dict[str, Any], deleted: set[str]) -> dict[str, Any]:
    """A citation shown after the reply: `document_deleted` once its document was deleted
    (its chunks then answer 404), kept so that the `[n]` markers still match."""
    return {**citation(source), "document_deleted": source["document_id"] in deleted}


def last_context(message_uuid: str, meta: dict[str, Any], created_at: Any) -> dict[str, Any]:
    """What the latest retrieval of a chat found: the context of its last RAG reply."""
    rag = meta.get("rag") or {}
    return {"message_id": message_uuid, "query": rag.get("query"), "search": meta.get("search"),
            "context_ids": meta.get("context_ids") or [], "relevance_score": meta.get("relevance_score"),
            "created_at": events.iso(created_at)}


def session_detail(db: Session, user: User, session_id: str) -> tuple[SessionInfo, list[Message], dict[int, str]]:
    """The session, its visible messages (oldest first) and the UUIDs of the users in them."""
    chat, _ = session_for(db, user, session_id)
    info = describe(db, [chat])[0]
    messages = list(db.scalars(select(Message).where(Message.chat_id == chat.id, Message.hidden.is_(False))
                               .order_by(Message.id)))
    user_ids = {m.sender_id for m in messages} | {(m.meta or {}).get("requested_by") for m in messages}
    uuids = dict(db.execute(select(User.id, User.uuid).where(User.id.in_({i for i in user_ids if i}))).all())
    return info, messages, uuids


def delete_session(db: Session, redis: Redis, user: User, session_id: str) -> None:
    """Delete the chat with its messages for good; only its owner may (404 for anyone else)."""
    chat, _ = session_for(db, user, session_id)
    delete_owned_chat(db, redis, user, chat)