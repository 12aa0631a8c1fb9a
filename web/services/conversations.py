"""Conversations as the conversations API (002) sees chats: listing with unread counts,
archiving, messages with attachments, and the chat's session history.

The rules are the chats' own (web/services/chats.py): participants see a chat, the owner
deletes it. Archived chats stay reachable here, since this API shows and toggles
`is_archived`; deleted chats are gone from every surface.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import Agent, Attachment, Chat, Message, Participant, SessionSpan, User
from web.errors import ApiError, Forbidden, NotFound
from web.realtime.reply_wait import ReplyNotFinished, wait_for_reply_end
from web.services import agents, chats, history, replies
from workers import events, runtime, upstream

VISIBLE = ("ACTIVE", "ARCHIVED")
ARCHIVED_CONVERSATION = "Conversation is archived: unarchive it to post"
SESSION_GAP = timedelta(minutes=30)  # a quieter spell than this starts a new session
FAILURE_STATUS = {"no_api_key": 400, "cancelled": 409, "service_unavailable": 503, "timeout": 504,
                  "upstream_timeout": 504}


@dataclass
class ConversationRow:
    """A chat with what its listing shows the user besides the chat's own fields."""
    chat: Chat
    unread_count: int
    last_message_at: datetime | None


@dataclass
class ConversationPage:
    rows: list[ConversationRow]
    total: int


def unread_count_of(user: User):
    """A correlated count of the chat's messages the user has not read (others' messages after
    the participant's `last_read_at`, or after joining for one who has read nothing: what was said
    before they joined is history, not news); use where `Chat` and `Participant` are in the query."""
    return (
        select(func.count(Message.id))
        .where(Message.chat_id == Chat.id, Message.hidden.is_(False), Message.status != "PROCESSING",
               or_(Message.sender_id.is_(None), Message.sender_id != user.id),
               Message.created_at > func.coalesce(Participant.last_read_at, Participant.joined_at))
        .correlate(Chat, Participant)
        .scalar_subquery()
    )


def last_message_at_of():
    """A correlated subquery: when the chat's newest message the user can list was sent (NULL before
    the first). A reply is listed at its question's time, not at the later time it ended, which the
    chat's last activity keeps; use where `Chat` is in the query."""
    return (
        select(Message.created_at).where(Message.chat_id == Chat.id, Message.hidden.is_(False))
        .order_by(Message.id.desc()).limit(1)
        .correlate(Chat)
        .scalar_subquery()
    )


def list_conversations(db: Session, user: User, limit: int, offset: int, archived: bool,
                       pinned: bool | None) -> ConversationPage:
    """The user's active (or archived) chats, pinned first, then by latest activity."""
    conditions = [Chat.status == ("ARCHIVED" if archived else "ACTIVE")]
    if pinned is not None:
        conditions.append(Chat.is_pinned.is_(pinned))
    member_of = and_(Participant.chat_id == Chat.id, Participant.user_id == user.id)
    rows = db.execute(
        select(Chat, unread_count_of(user), last_message_at_of()).join(Participant, member_of).where(*conditions)
        .order_by(Chat.is_pinned.desc(), Chat.last_activity_at.desc(), Chat.id.desc())
        .limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count(Chat.id)).join(Participant, member_of).where(*conditions)) or 0
    return ConversationPage([ConversationRow(*row) for row in rows], total)


def conversation_for_member(db: Session, user: User, conversation_id: int) -> tuple[Chat, Participant]:
    """The chat if `user` takes part in it: 404 when unknown or deleted, 403 for non-participants."""
    chat = db.get(Chat, conversation_id)
    if chat is None or chat.status not in VISIBLE:
        raise NotFound(f"Conversation {conversation_id} not found")
    member = chats.participant(db, chat, user)
    if member is None:
        raise Forbidden("Access denied to this conversation")
    return chat, member


def conversation_row(db: Session, chat: Chat, member: Participant, user: User) -> ConversationRow:
    """The chat with the user's unread count and its last message time, as the listing shows it."""
    unread, last = db.execute(select(unread_count_of(user), last_message_at_of()).select_from(Chat)
                              .join(Participant, Participant.id == member.id).where(Chat.id == chat.id)).one()
    return ConversationRow(chat, unread or 0, last)


def create_conversation(db: Session, user: User, title: str, agent: Agent | None, conversation_type: str,
                        is_pinned: bool) -> Chat:
    meta = {"conversation_type": conversation_type} if conversation_type != "chat" else None
    agent_id = agent.id if agent else None
    with agents.agent_kept(db, agent_id):
        return chats.create_chat(db, user, title=title, agent_id=agent_id, is_pinned=is_pinned, meta=meta)


def require_manager(member: Participant) -> None:
    if member.role not in ("OWNER", "ADMIN"):
        raise Forbidden("Only the conversation's owner or admins can change it")


def update_conversation(db: Session, redis: Redis, user: User, chat: Chat, member: Participant,
                        changes: dict[str, Any]) -> Chat:
    """Apply `changes` (title, is_pinned, status ACTIVE/ARCHIVED, agent_id) by an owner or admin.

    A chat deleted since it was read is 404, as one deleted before: the change never brings it back.
    Archived, it closes its sockets on the chat API, which hides archived chats.
    """
    require_manager(member)
    if changes.get("agent_id") is not None:
        agents.usable_agent(db, user, changes["agent_id"])
    before = chat.status
    with agents.agent_kept(db, changes.get("agent_id")):
        chats.write_unless_deleted(db, chat, changes, missing=f"Conversation {chat.id} not found")
    replies.close_hidden_sockets(redis, chat, before)
    return chat


def delete_conversation(db: Session, redis: Redis, chat: Chat, member: Participant) -> None:
    """Only the owner deletes; the chat disappears from every surface (status DELETED) and its replies stop.
    A deletion racing another (or a deletion for good) is 404, as one sent after it."""
    if member.role != "OWNER":
        raise Forbidden("Only the conversation's owner can delete it")
    replies.change_chat_status(db, redis, chat, member, "DELETED", missing=f"Conversation {chat.id} not found")


def list_messages(db: Session, chat: Chat, member: Participant, limit: int,
                  offset: int) -> tuple[list[Message], dict[int, list[Attachment]], int]:
    """A page of the chat's messages, oldest first, with attachments; the page counts as read."""
    visible = and_(Message.chat_id == chat.id, Message.hidden.is_(False))
    page = list(db.scalars(select(Message).where(visible).order_by(Message.id).limit(limit).offset(offset)))
    total = db.scalar(select(func.count(Message.id)).where(visible)) or 0
    files = attachments_of(db, [m.id for m in page])
    newest = read_up_to(page)
    if newest is not None and (member.last_read_at is None or newest > member.last_read_at):
        chats.mark_read_up_to(db, member, newest)
        db.commit()
    return page, files, total


def read_up_to(page: list[Message]) -> datetime | None:
    """The time up to which a listed page is read: its newest message's, but before any reply still
    being written (it shares its question's time, and must count as unread once it ends)."""
    newest = max((m.created_at for m in page), default=None)
    unfinished = [m.created_at for m in page if m.status == "PROCESSING"]
    if newest is not None and unfinished:
        newest = min(newest, min(unfinished) - timedelta(microseconds=1))
    return newest


def attachments_of(db: Session, message_ids: list[int]) -> dict[int, list[Attachment]]:
    found: dict[int, list[Attachment]] = {}
    if message_ids:
        for item in db.scalars(select(Attachment).where(Attachment.message_id.in_(message_ids))
                               .order_by(Attachment.id)):
            found.setdefault(item.message_id, []).append(item)
    return found


def check_open(chat: Chat) -> None:
    """400 for an archived conversation: it stays readable, but nobody posts to it on any surface
    (as on the chats API, 003) until it is active again."""
    chats.check_active(chat, ARCHIVED_CONVERSATION)


def add_message(db: Session, redis: Redis, chat: Chat, member: Participant, user: User, content: str,
                sender_type: str, files: list[dict[str, Any]]) -> tuple[Message, list[Attachment]]:
    """Store a message as the user or as the agent, without asking the AI for a reply.

    Words typed as the agent go to the model as its own turns in every member's replies, so only
    the conversation's owner or admins type them (as 001 does with assistant messages).
    """
    check_open(chat)
    if sender_type == "agent" and not chats.manages(member):
        raise Forbidden("Only the conversation's owner or admins can post as the agent")
    role = "assistant" if sender_type == "agent" else "user"
    message, _ = replies.post_message(db, redis, chat, member, user, content, role=role, want_reply=False,
                                      archived=ARCHIVED_CONVERSATION)
    stored = [Attachment(message_id=message.id, created_at=message.created_at, **f) for f in files]
    db.add_all(stored)
    db.commit()
    record_activity(db, chat, message.created_at, 1)
    return message, stored


def ask_ai(db: Session, redis: Redis, chat: Chat, member: Participant, user: User, content: str,
           agent: Agent | None, include_context: bool) -> Message:
    """Store the user's message, have `agent` (else the chat's own AI) reply through the workers,
    and wait for the reply: 504 when it takes too long (it is still stored when it ends)."""
    check_open(chat)
    reply_meta: dict[str, Any] = {"agent_id": agent.id} if agent else {}
    if not include_context:
        reply_meta["include_context"] = False
    cursor = events.last_event_id(redis, chat.id)
    message, reply = replies.post_message(db, redis, chat, member, user, content, want_reply=True,
                                          reply_meta=reply_meta, archived=ARCHIVED_CONVERSATION)
    record_activity(db, chat, message.created_at, 2)
    wait_s = runtime.current().settings.ai_message_wait_s
    try:
        wait_for_reply_end(chat.id, cursor, reply.uuid, wait_s, lambda: history.reply_ended(reply.uuid))
    except ReplyNotFinished:
        raise ApiError({"message": f"The AI response did not finish within {wait_s:g} seconds; it is stored "
                                   "in the conversation when it does", "data": {"message_id": reply.id}},
                       status=504) from None
    reply = replies.stored_reply(db, reply, f"Conversation {chat.id} not found")
    if reply.status != "DELIVERED":
        code = reply.error_code or ("cancelled" if reply.status == "CANCELLED" else "upstream_error")
        raise ApiError({"message": upstream.ERROR_TEXT.get(code, "The AI response was stopped"), "error_code": code,
                        "data": {"message_id": reply.id, "partial_content": reply.content}},
                       status=FAILURE_STATUS.get(code, 502))
    return reply


def record_activity(db: Session, chat: Chat, at: datetime, count: int) -> SessionSpan:
    """Count `count` messages at `at` in the chat's current session, or open a new one after a gap.

    One writer per chat's spans: the chat's write lock (a SELECT ... FOR UPDATE locks nothing on
    SQLite, where posts at once then opened several sessions and lost counts).
    """
    chats.lock_chat(db, chat)
    span = db.scalar(select(SessionSpan).where(SessionSpan.chat_id == chat.id)
                     .order_by(SessionSpan.id.desc()).limit(1))
    if span is None or at - (span.session_end or span.session_start) > SESSION_GAP:
        span = SessionSpan(chat_id=chat.id, session_start=at, session_end=at, messages_count=0, created_at=at)
        db.add(span)
    span.session_end = max(span.session_end or at, at)
    span.messages_count += count
    span.duration_minutes = int((span.session_end - span.session_start).total_seconds() // 60)
    db.commit()
    return span


def session_history(db: Session, chat: Chat) -> list[SessionSpan]:
    return list(db.scalars(select(SessionSpan).where(SessionSpan.chat_id == chat.id).order_by(SessionSpan.id)))
