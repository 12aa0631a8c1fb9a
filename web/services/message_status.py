"""Delivery status of a message: SENDING → SENT → DELIVERED → READ, or FAILED; never backwards.

Any participant of the chat may move a message forward (skipping steps is allowed: a read
message was delivered); only its sender or the chat's owner or admins may mark it SENT or
FAILED (the sending side's statuses), the others acknowledge it (DELIVERED, READ).
An AI reply's status is its outcome (DELIVERED, CANCELLED or FAILED), which other surfaces
and analytics read: DELIVERED and READ on it are acknowledged without replacing it.
READ also records that the reader has read the chat up to that message (`last_read_at`, only
forward): a message's status is its own, so the messages after it stay unread.
Each change is announced on the chat's event stream as `message_status_changed`.
"""
from __future__ import annotations

from redis import Redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from models.base import utcnow
from web.errors import BadRequest, Forbidden
from web.services import chats, replies
from workers import events

MESSAGE_STATUS_CHANGED = "message_status_changed"

ORDER = ("SENDING", "SENT", "DELIVERED", "READ")
FAILABLE = ("SENDING", "SENT")
# A stopped AI reply is final with the text streamed so far: it counts as delivered.
EFFECTIVE = {"CANCELLED": "DELIVERED"}
ACKNOWLEDGED = ("DELIVERED", "READ")  # what readers say of a message (the only marks on an AI reply)
MANAGERS = ("OWNER", "ADMIN")  # who may set the sending side's statuses besides the sender
ATTEMPTS = 3


def check_transition(current: str, new: str) -> None:
    """Raise BadRequest unless `current` → `new` goes forward (or is no change)."""
    if current == "PROCESSING":
        raise BadRequest("This AI reply is still being generated; its status cannot be changed yet")
    current = EFFECTIVE.get(current, current)
    if current == new:
        return
    if new == "FAILED":
        allowed = current in FAILABLE
    else:
        allowed = current in ORDER and ORDER.index(new) > ORDER.index(current)
    if not allowed:
        raise BadRequest(f"Cannot change message status from {current} to {new}")


def change_status(db: Session, redis: Redis, chat: Chat, member: Participant, message: Message, user: User,
                  status: str) -> Message:
    """Move `message` to `status` for `user` (a participant); announce it when it changed.

    The update is conditional on the status read, so two concurrent changes can never
    leave a message further back than either of them set it.
    """
    if message.role == "assistant":
        return acknowledge_reply(db, member, message, status)
    if status not in ACKNOWLEDGED and message.sender_id != user.id and member.role not in MANAGERS:
        raise Forbidden(f"Only the message's sender or the chat's owner or admins can mark it {status}; "
                        "others can mark it DELIVERED or READ")
    for _ in range(ATTEMPTS):
        chats.lock_chat(db, chat, missing="Message not found")  # none deletes it while it is read and written
        db.refresh(message)
        previous = message.status
        check_transition(previous, status)
        if EFFECTIVE.get(previous, previous) == status:
            changed = False
            break
        done = db.execute(update(Message).where(Message.id == message.id, Message.status == previous)
                          .values(status=status, updated_at=utcnow()))
        if done.rowcount == 1:
            changed = True
            break
        db.rollback()
    else:
        raise BadRequest("The message's status is changing concurrently; try again")
    if status == "READ":
        chats.mark_read_up_to(db, member, message.created_at)
    db.commit()
    db.refresh(message)
    if changed:
        replies.publish(redis, chat, status_event(chat, message, user, previous))
    return message


def acknowledge_reply(db: Session, member: Participant, message: Message, status: str) -> Message:
    """DELIVERED or READ on an AI reply: recorded for the reader (READ: read up to it), the
    reply's stored outcome kept, so a READ never hides a CANCELLED or FAILED reply nor takes a
    DELIVERED one out of the analytics; anything else is 400."""
    db.refresh(message)
    if message.status == "PROCESSING":
        raise BadRequest("This AI reply is still being generated; its status cannot be changed yet")
    if status not in ACKNOWLEDGED:
        raise BadRequest(f"An AI reply's status is its outcome: it can only be marked DELIVERED or READ, not {status}")
    if status == "READ":
        chats.mark_read_up_to(db, member, message.created_at)
        db.commit()
    return message


def status_event(chat: Chat, message: Message, user: User, previous: str) -> dict:
    """The event in UUID form, with the integer ids the integer-id surfaces show (`int_ids`)."""
    return {"type": MESSAGE_STATUS_CHANGED, "chat_id": chat.uuid, "message_id": message.uuid,
            "status": message.status, "previous_status": previous, "user_id": user.uuid,
            "timestamp": events.iso_now(),
            "int_ids": {"chat_id": chat.id, "message_id": message.id, "user_id": user.id}}
