"""004 chat: start a retrieval-augmented reply, and find a reply again to resume its stream.

A RAG session is a chat with `rag_enabled`; the user's message and the PROCESSING AI
message are stored by `replies.post_message`, which then starts the `retrieve` job (it
searches, then runs `generate_reply`) instead of the reply job.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from models.base import new_uuid
from web.errors import ApiError, NotFound, ServiceUnavailable
from web.services import chats, rag_datasets, replies, sessions, upstreams
from workers import events, leases, queues, runtime
from workers.jobs.replies import end_reply_without_worker


@dataclass
class StartedReply:
    chat: Chat
    reply: Message
    cursor: str  # the chat stream's position before the message was posted
    new_session: bool


def session_for(db: Session, user: User, session_id: str) -> tuple[Chat, Participant]:
    """The user's session (any chat they take part in, archived ones too); 404 when it is not theirs."""
    try:
        return chats.chat_for_member(db, user, session_id, chats.OPEN)
    except ApiError as exc:
        raise NotFound("Chat session not found") from exc


def start(db: Session, redis: Redis, user: User, message: str, session_id: str | None,
          search_options: dict[str, Any], dataset_id: str | None) -> StartedReply:
    """Store the message in a new or existing session and start retrieval, then the reply; 400
    before anything is stored when no upstream has a key (the reply could only fail)."""
    dataset = rag_datasets.dataset_for(db, user, dataset_id) if dataset_id else None
    upstreams.key_for_reply(db, user)
    new_session = session_id is None
    reply_uuid = new_uuid()
    if new_session:
        chat, member = open_session(db, redis, user, message, reply_uuid)
    else:
        chat, member = session_for(db, user, session_id)
        chats.check_active(chat, sessions.ARCHIVED_SESSION)
    rag = {"query": message, "search_options": search_options, "dataset_id": dataset.id if dataset else None}
    try:
        cursor = events.last_event_id(redis, chat.id)
        _, reply = replies.post_message(db, redis, chat, member, user, message, want_reply=True,
                                        reply_meta={"rag": rag}, start=start_retrieval, reply_uuid=reply_uuid,
                                        archived=sessions.ARCHIVED_SESSION)
    except Exception as exc:
        if new_session:
            drop_empty_session(db, redis, user, chat, reply_uuid)
        if isinstance(exc, NotFound):  # deleted while the request ran (chats.lock_chat)
            raise NotFound("Chat session not found") from exc
        raise
    return StartedReply(chat, reply, cursor, new_session)


def open_session(db: Session, redis: Redis, user: User, message: str, reply_uuid: str) -> tuple[Chat, Participant]:
    """A new session for `message`, made after the reply's stream slot is taken: a message refused
    for too many replies streaming creates no session, not even one another request could list."""
    replies.take_stream_slot(redis, user, reply_uuid)
    chat = None
    try:
        chat = chats.create_chat(db, user, title=chats.title_from(message), rag_enabled=True)
        return chat, chats.participant(db, chat, user)
    except Exception:
        drop_empty_session(db, redis, user, chat, reply_uuid)
        raise


def drop_empty_session(db: Session, redis: Redis, user: User, chat: Chat | None, reply_uuid: str) -> None:
    """After a failure in a new session: unless its message was stored (its reply then holds the
    slot), free the slot and delete the session, so no empty one is left behind."""
    db.rollback()  # a failed statement leaves PostgreSQL's transaction unusable until then
    if chat is not None and db.scalar(select(Message.id).where(Message.chat_id == chat.id).limit(1)):
        return
    leases.release(redis, leases.replies_key(user.id), reply_uuid)
    if chat is not None:
        db.delete(chat)
        db.commit()


def start_retrieval(db: Session, redis: Redis, reply: Message, primary_only: bool = False) -> None:
    """Enqueue the `retrieve` job; if the queue is unreachable, end the reply FAILED (503)."""
    settings = runtime.current().settings
    try:
        queues.enqueue_retrieval(redis, reply.id, reply.uuid, timeout_s=settings.reply_job_timeout_s,
                                 primary_only=primary_only)
    except Exception:
        end_reply_without_worker(reply.id, "FAILED", error_code="queue_unavailable")
        raise ServiceUnavailable("Your message was saved, but the reply could not be started; try again") from None


def reply_for(db: Session, user: User, reply_uuid: str) -> tuple[Chat, Message]:
    """An AI message in one of the user's sessions, archived ones too (to resume its stream: that
    posts nothing); 404 otherwise, also when the session is deleted (status DELETED), as
    `session_for` answers."""
    reply = db.scalar(select(Message).where(Message.uuid == reply_uuid, Message.role == "assistant"))
    if reply is None:
        raise NotFound("Reply not found")
    try:
        chat, _ = chats.chat_for_member(db, user, reply.chat_id, chats.OPEN)
    except ApiError as exc:
        raise NotFound("Reply not found") from exc
    return chat, reply
