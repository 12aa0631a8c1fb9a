"""Delivery status of a message: SENDING → SENT → DELIVERED → READ, or FAILED; never backwards.

Any participant of the chat may move a message forward (skipping steps is allowed: a read
message was delivered). READ also records that the reader has read the chat up to now.
Each change is announced on the chat's event stream as `message_status_changed`.
"""
from __future__ import annotations

from redis import Redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from models.base import utcnow
from web.errors import BadRequest
from web.services import replies
from workers import events

MESSAGE_STATUS_CHANGED = "message_status_changed"

ORDER = ("SENDING", "SENT", "DELIVERED", "READ")
FAILABLE = ("SENDING", "SENT")
# A stopped AI reply is final with the text streamed so far: it counts as delivered.
EFFECTIVE = {"CANCELLED": "DELIVERED"}
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
    for _ in range(ATTEMPTS):
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
        member.last_read_at = utcnow()
    db.commit()
    db.refresh(message)
    if changed:
        replies.publish(redis, chat, status_event(chat, message, user, previous))
    return message


def status_event(chat: Chat, message: Message, user: User, previous: str) -> dict:
    """The event in UUID form, with the integer ids the integer-id surfaces show (`int_ids`)."""
    return {"type": MESSAGE_STATUS_CHANGED, "chat_id": chat.uuid, "message_id": message.uuid,
            "status": message.status, "previous_status": previous, "user_id": user.uuid,
            "timestamp": events.iso_now(),
            "int_ids": {"chat_id": chat.id, "message_id": message.id, "user_id": user.id}}
