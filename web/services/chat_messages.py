"""Messages stored as the client sent them (no AI reply), threads, and one message's access check.

The 003 surface records user and system messages with their own type and delivery status
(AI messages come only from the reply pipeline); `replies.post_message` always stores a
user's message and may start a reply, so these are stored here with the same rules.
"""
from __future__ import annotations

from typing import Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from models.base import utcnow
from models.message import INTERNAL_META
from web.errors import BadRequest, Forbidden, NotFound
from web.services import chats, replies
from workers import events

ARCHIVED_CHAT = "Chat is archived: set its status to ACTIVE to post"

def record_message(db: Session, redis: Redis, chat: Chat, member: Participant, user: User, content: str, *,
                   role: str, content_type: str, status: str, parent_id: int | None,
                   meta: dict[str, Any] | None) -> Message:
    """Store a message as sent and announce it (`new_message`); never starts an AI reply.

    A user message is sent by `user`; a system message is posted by the chat's owner or an
    admin, as on the chat API. Nobody posts as the assistant: a fake reply would be fed to the
    model as its own turn and counted as an answer.
    """
    if not content.strip():
        raise BadRequest("Message content cannot be empty")
    chats.check_active(chat, ARCHIVED_CHAT)
    if not member.can_send_messages:
        raise Forbidden("Cannot send messages to this chat")
    if role == "assistant":
        raise Forbidden("Only the assistant can post AI messages")
    chats.check_may_post_as(member, role)
    if parent_id is not None and visible_message(db, chat, parent_id) is None:
        raise BadRequest("parent_message_id must be a message of this chat")
    check_client_meta(meta)
    now = utcnow()
    message = Message(chat_id=chat.id, sender_id=user.id, role=role, content=content,
                      content_type=content_type, status=status, parent_id=parent_id, meta=meta,
                      created_at=now, updated_at=now)
    # deleted meanwhile: 404, not the message's foreign key error; archived meanwhile: 400
    chats.lock_for_posts(db, chat, member, now, counted=1, archived=ARCHIVED_CHAT)
    db.add(message)
    db.commit()
    replies.publish(redis, chat, {"type": events.NEW_MESSAGE,
                                  "message": events.message_view(message, chat.uuid, user.uuid)})
    return message


def check_client_meta(meta: dict[str, Any] | None) -> None:
    """Refuse the reply pipeline's metadata keys from a client: the RAG surface reads
    `requested_by` as the author of an AI message, so a client could pass as someone else."""
    reserved = sorted(INTERNAL_META.intersection(meta or {}))
    if reserved:
        raise BadRequest(f"message_metadata cannot set {', '.join(reserved)}: these keys are the server's")


def visible_message(db: Session, chat: Chat, message_id: int) -> Message | None:
    """A message of `chat` that is shown (not hidden)."""
    return db.scalar(select(Message).where(Message.id == message_id, Message.chat_id == chat.id,
                                           Message.hidden.is_(False)))


def shown_message_by_uuid(db: Session, chat_id: int, message_uuid: str) -> Message | None:
    """A message of chat `chat_id` named by its UUID (as the event stream does), unless hidden."""
    return db.scalar(select(Message).where(Message.uuid == message_uuid, Message.chat_id == chat_id,
                                           Message.hidden.is_(False)))


def list_messages(db: Session, chat: Chat, limit: int, skip: int, thread_id: int | None = None) -> list[Message]:
    """The newest `limit` shown messages after skipping the newest `skip`, oldest first.

    With `thread_id`, only that message and every reply under it (replies to replies too).
    """
    query = select(Message).where(Message.chat_id == chat.id, Message.hidden.is_(False))
    if thread_id is not None:
        if visible_message(db, chat, thread_id) is None:
            raise NotFound("Thread not found in this chat")
        # Replies are of their parent's chat: the walk reads the chat's messages through its index
        # (parent_id has none: unrestricted, each level would read every chat's messages).
        thread = select(Message.id).where(Message.id == thread_id).cte("thread", recursive=True)
        thread = thread.union_all(select(Message.id).where(Message.chat_id == chat.id,
                                                           Message.parent_id == thread.c.id))
        query = query.where(Message.id.in_(select(thread.c.id)))
    rows = db.scalars(query.order_by(Message.id.desc()).limit(limit).offset(skip))
    return list(reversed(list(rows)))


def message_for_member(db: Session, user: User, message_id: int,
                       statuses: tuple[str, ...] = chats.OPEN) -> tuple[Message, Chat, Participant]:
    """A shown message of a chat `user` takes part in: 404 when unknown or its chat is hidden, else 403."""
    message = db.get(Message, message_id)
    if message is None or message.hidden:
        raise NotFound("Message not found")
    chat = db.get(Chat, message.chat_id)
    if chat is None or chat.status not in statuses:
        raise NotFound("Message not found")
    member = chats.participant(db, chat, user)
    if member is None:
        raise Forbidden("Access denied to this chat")
    return message, chat, member
