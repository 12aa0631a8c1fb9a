"""Posting messages and starting, stopping AI replies: the pipeline's web half.

A user's message and the AI message that will hold the reply are stored in one
transaction; only after the commit is the reply enqueued (job id = the AI message), so a
worker never sees a message that is not stored and nothing the user sent is lost.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator, Sequence

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from models.base import new_uuid, utcnow
from web.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable, TooManyRequests
from web.services import agents, chats
from workers import events, leases, queues, runtime
from workers.jobs.replies import end_reply_without_worker

log = logging.getLogger(__name__)

STOP_FLAG_TTL_S = 3600
TYPING_INTERVAL_MS = 1000  # typing indicators a user sends to a chat more often are dropped
RETRY_STREAM_S = 5


def chat_model(chat: Chat) -> str:
    """The model a chat's replies use: its own, else the default (chats made on 002, 003 and 004
    have none of their own)."""
    return chat.ai_model or runtime.current().settings.default_ai_model


def post_message(db: Session, redis: Redis, chat: Chat, member: Participant, user: User, content: str,
                 role: str = "user", parent: Message | None = None, meta: dict[str, Any] | None = None,
                 want_reply: bool | None = None, hidden: bool = False, primary_only: bool = False,
                 reply_meta: dict[str, Any] | None = None, start: Callable[..., None] | None = None,
                 reply_uuid: str | None = None, archived: str | None = None,
                 earlier: Sequence[tuple[str, str]] = ()) -> tuple[Message, Message | None]:
    """Store a message (and, for a user message in an AI chat, the pending reply), then enqueue.

    `want_reply` None follows the chat's AI setting. `hidden` keeps the exchange out of the
    chat's history, counters and later context. `reply_meta` is stored on the AI message for
    the job (e.g. `{"include_context": False}`). `start` replaces `start_reply` for replies
    that begin with another job (RAG retrieval), with the same arguments and failure rules.
    `reply_uuid` names the reply when the caller took its stream slot first (`take_stream_slot`).
    `archived` answers a chat archived since the caller checked it (400; None: 404 as if gone, on
    the chat API, which hides archived chats).
    """
    check_content(content)
    check_may_send(member)
    if want_reply is None:
        want_reply = chat.ai_enabled
    reply_uuid = (reply_uuid or new_uuid()) if want_reply and role == "user" else None
    if reply_uuid is not None:
        take_stream_slot(redis, user, reply_uuid)
    with storing(db, redis, user, reply_uuid):
        # deleted meanwhile: 404, not the messages' foreign key error; archived meanwhile: refused
        now = utcnow()
        chats.lock_for_posts(db, chat, member, now, archived=archived,
                             counted=0 if hidden else len(earlier) + (2 if reply_uuid else 1))
        stored = [Message(chat_id=chat.id, sender_id=user.id, role=each_role, content=each_content,
                          status="DELIVERED", hidden=hidden, created_at=now, updated_at=now)
                  for each_role, each_content in earlier]
        message = Message(chat_id=chat.id, sender_id=user.id, role=role, content=content, status="DELIVERED",
                          parent_id=parent.id if parent else None, meta=meta, hidden=hidden,
                          created_at=now, updated_at=now)
        db.add_all([*stored, message])
        db.flush()
        reply = None
        if reply_uuid is not None:
            reply = new_reply(db, chat, user, message.id, reply_uuid, now, hidden=hidden, reply_meta=reply_meta)
        db.commit()
    for each in [*stored, message]:
        shown = {"type": events.NEW_MESSAGE, "message": events.message_view(each, chat.uuid, user.uuid)}
        try:
            publish(redis, chat, {**shown, events.ONLY_FOR: user.uuid} if hidden else shown)
        except Exception:  # stored: the history has it; the reply must still start (or end FAILED)
            log.warning("could not announce message %s on chat %s", each.uuid, chat.uuid, exc_info=True)
    if reply is not None:
        (start or start_reply)(db, redis, reply, primary_only=primary_only)
    return message, reply


def answer_again(db: Session, redis: Redis, chat: Chat, member: Participant, user: User, prompt_id: int,
                 reply_uuid: str, archived: str | None = None) -> Message:
    """Store and start a new reply to the chat's stored message `prompt_id` (a 001 resend retrying
    a reply that failed), as `post_message` starts one; nothing else is stored."""
    check_may_send(member)
    take_stream_slot(redis, user, reply_uuid)
    with storing(db, redis, user, reply_uuid):
        now = utcnow()
        chats.lock_for_posts(db, chat, member, now, counted=1, archived=archived)
        reply = new_reply(db, chat, user, prompt_id, reply_uuid, now)
        db.commit()
    start_reply(db, redis, reply)
    return reply


def new_reply(db: Session, chat: Chat, user: User, prompt_id: int, reply_uuid: str, now: datetime,
              hidden: bool = False, reply_meta: dict[str, Any] | None = None) -> Message:
    """The AI message (PROCESSING) that will hold the reply to message `prompt_id`, added to the
    session for the caller to commit."""
    reply = Message(uuid=reply_uuid, chat_id=chat.id, role="assistant", content="", status="PROCESSING",
                    model=chat_model(chat), hidden=hidden,
                    meta={**reply_agent(db, chat, user), **(reply_meta or {}), "requested_by": user.id,
                          "prompt_message_id": prompt_id},
                    created_at=now, updated_at=now)
    db.add(reply)
    return reply


@contextmanager
def storing(db: Session, redis: Redis, user: User, reply_uuid: str | None) -> Iterator[None]:
    """Roll back a write that fails, and free the stream slot taken for its reply."""
    try:
        yield
    except Exception:
        db.rollback()
        if reply_uuid is not None:
            leases.release(redis, leases.replies_key(user.id), reply_uuid)
        raise


def reply_agent(db: Session, chat: Chat, user: User) -> dict[str, Any]:
    """The chat's agent, named on the reply when it is asked: the reply stays that agent's (in the
    analytics and for the job) if the chat changes or drops its agent later. The agent answers
    whoever asks in a chat whose owner may use it (the owner chose it for the chat); None when the
    owner may not (another user's agent made private since): then the chat's own model and prompt
    answer."""
    if chat.agent_id is None:
        return {}
    owner = user if user.id == chat.owner_id else db.get(User, chat.owner_id)
    return {"agent_id": chat.agent_id if owner is not None and agents.may_use(db, owner, chat.agent_id) else None}


def check_content(content: str) -> None:
    """400 for a blank message (callers storing several messages check them all first)."""
    if not content.strip():
        raise BadRequest("Message content cannot be empty")


def check_may_send(member: Participant) -> None:
    """403 for a participant without `can_send_messages` (a read-only channel member)."""
    if not member.can_send_messages:
        raise Forbidden("Cannot send messages to this chat")


def take_stream_slot(redis: Redis, user: User, reply_uuid: str) -> None:
    """One of the user's concurrent-reply slots, shared by every process and API surface.

    Taking the slot of the same `reply_uuid` again keeps the one slot (a lease per reply).
    """
    settings = runtime.current().settings
    if not leases.acquire(redis, leases.replies_key(user.id), reply_uuid, limit=settings.max_concurrent_streams,
                                 ttl_s=settings.reply_job_timeout_s + 60):
        raise TooManyRequests(
            f"Too many replies streaming at once (limit {settings.max_concurrent_streams}); "
            "wait for one to finish", headers={"Retry-After": str(RETRY_STREAM_S)})


def start_reply(db: Session, redis: Redis, reply: Message, primary_only: bool = False) -> None:
    """Enqueue a stored PROCESSING reply; if the queue is unreachable, end it FAILED (503)."""
    settings = runtime.current().settings
    try:
        queues.enqueue_reply(redis, reply.id, reply.uuid, timeout_s=settings.reply_job_timeout_s,
                             primary_only=primary_only)
    except Exception:
        log.exception("could not enqueue reply %s", reply.uuid)
        end_reply_without_worker(reply.id, "FAILED", error_code="queue_unavailable")
        raise ServiceUnavailable("Your message was saved, but the AI reply could not be started; try again") from None


def stop_reply(db: Session, redis: Redis, chat: Chat, member: Participant, message_uuid: str) -> Message:
    """Ask the reply to stop wherever it runs; a reply still queued is cancelled here. A member
    who cannot send messages (a CHANNEL reader) cannot stop the replies of those who can (403)."""
    if not member.can_send_messages:
        raise Forbidden("Cannot stop replies in this chat: you cannot send messages to it")
    reply = db.scalar(select(Message).where(Message.uuid == message_uuid, Message.chat_id == chat.id))
    if reply is None or reply.role != "assistant":
        raise NotFound("AI message not found in this chat")
    if reply.status != "PROCESSING":
        return reply
    ask_to_stop(redis, reply.uuid)
    job = queues.find_reply_job(redis, reply.uuid)
    if job is None or job.get_status() in queues.WAITING:
        if job is not None:
            job.cancel()
        end_reply_without_worker(reply.id, "CANCELLED", finish_reason="cancelled")
    db.refresh(reply)
    return reply


def change_chat_status(db: Session, redis: Redis, chat: Chat, actor: Participant, status: str,
                       missing: str = "Chat not found") -> Chat:
    """`chats.change_status` (404 `missing` when the chat was deleted meanwhile); a chat deleted
    stops its replies and closes its open sockets, as on every surface that deletes; one archived
    closes those of the chat API (`close_hidden_sockets`)."""
    before = chat.status
    chats.change_status(db, chat, actor, status, missing=missing)
    if chat.status == "DELETED":
        stop_chat_replies(db, redis, chat)
        close_chat_sockets(redis, chat)
    else:
        close_hidden_sockets(redis, chat, before)
    return chat


def close_chat_sockets(redis: Redis, chat: Chat) -> None:
    """Close the deleted chat's open sockets (4404, as a socket opened now would be)."""
    publish(redis, chat, {"type": events.CHAT_DELETED})


def close_hidden_sockets(redis: Redis, chat: Chat, was: str) -> None:
    """For a chat just archived (its status `was` another): close its sockets on the chat API (000),
    which hides archived chats (4404, as a socket opened now would be); the chats API (003) shows
    them, and its sockets stay."""
    if was != "ARCHIVED" and chat.status == "ARCHIVED":
        publish(redis, chat, {"type": events.CHAT_ARCHIVED})


def stop_chat_replies(db: Session, redis: Redis, chat: Chat) -> list[tuple[str, int | None]]:
    """Ask every reply still streaming in the chat to stop: one streaming into a deleted chat
    would go on spending the upstream (and streaming to the chat's open sockets). Returns each
    reply's uuid and asker."""
    running = db.execute(select(Message.uuid, Message.meta).where(Message.chat_id == chat.id,
                                                                  Message.status == "PROCESSING")).all()
    for reply_uuid, _ in running:
        ask_to_stop(redis, reply_uuid)
    return [(reply_uuid, (meta or {}).get("requested_by")) for reply_uuid, meta in running]


def stored_reply(db: Session, reply: Message, missing: str) -> Message:
    """The reply as stored now (after waiting for it to end); 404 `missing` when it was deleted
    with its chat meanwhile."""
    found = db.scalar(select(Message).where(Message.id == reply.id).execution_options(populate_existing=True))
    if found is None:
        raise NotFound(missing)
    return found


def ask_to_stop(redis: Redis, message_uuid: str) -> None:
    """The worker running the reply ends it within a poll (`workers.reply_run.StopWatcher`)."""
    redis.set(events.stop_key(message_uuid), "1", ex=STOP_FLAG_TTL_S)


def announce_typing(redis: Redis, chat: Chat, user: User, event: dict[str, Any]) -> None:
    """Publish a typing indicator, at most one per user and chat every TYPING_INTERVAL_S: an
    indicator says "typing for the next few seconds", and a client sending one per keystroke
    would otherwise flood every member and push reply events out of the capped stream."""
    if redis.set(events.typing_key(chat.id, user.id), "1", nx=True, px=TYPING_INTERVAL_MS):
        publish(redis, chat, event)


def publish(redis: Redis, chat: Chat, event: dict[str, Any]) -> str:
    settings = runtime.current().settings
    return events.publish(redis, chat.id, event, maxlen=settings.reply_stream_maxlen, ttl_s=settings.reply_stream_ttl_s)

