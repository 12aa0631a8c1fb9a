"""Reactions on messages: one per user, message and reaction; adding twice changes nothing.

Any participant of the chat may react (readers of a channel too), with at most MAX_PER_USER
different reactions on a message. Each change is announced on the chat's event stream as
`reaction_added` / `reaction_removed`.
"""
from __future__ import annotations

from redis import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Chat, Message, Reaction, User
from models.base import utcnow
from web.errors import BadRequest, NotFound
from web.services import chats, replies
from workers import events

REACTION_ADDED = "reaction_added"
REACTION_REMOVED = "reaction_removed"
MAX_PER_USER = 20  # distinct reactions of one user on one message: every listing of the chat carries them


def add_reaction(db: Session, redis: Redis, chat: Chat, message: Message, user: User, reaction: str) -> bool:
    """Add `user`'s `reaction`; False (and no event) when it was already there."""
    if _exists(db, message, user, reaction):
        return False
    chats.lock_chat(db, chat, missing="Message not found")  # deleted meanwhile: 404, not a 200 for nothing
    made = db.scalar(select(func.count()).select_from(Reaction)
                     .where(Reaction.message_id == message.id, Reaction.user_id == user.id)) or 0
    if made >= MAX_PER_USER:  # counted under the chat's lock: two adds at once cannot both pass
        db.rollback()
        raise BadRequest(f"You have made {made} reactions on this message, the most one can; "
                         "remove one to add another")
    db.add(Reaction(message_id=message.id, user_id=user.id, reaction=reaction, created_at=utcnow()))
    try:
        db.commit()
    except IntegrityError:  # the same reaction added concurrently: that one counts
        db.rollback()
        return False
    replies.publish(redis, chat, reaction_event(REACTION_ADDED, chat, message, user, reaction))
    return True


def remove_reaction(db: Session, redis: Redis, chat: Chat, message: Message, user: User, reaction: str) -> None:
    """Remove `user`'s `reaction`; 404 when they had not made it."""
    done = db.execute(delete(Reaction).where(Reaction.message_id == message.id, Reaction.user_id == user.id,
                                             Reaction.reaction == reaction))
    if done.rowcount != 1:
        db.rollback()
        raise NotFound("Reaction not found")
    db.commit()
    replies.publish(redis, chat, reaction_event(REACTION_REMOVED, chat, message, user, reaction))


def reactions_for(db: Session, message_ids: list[int]) -> dict[int, dict[str, list[int]]]:
    """For each message, its reactions and the ids of the users who made them, oldest first."""
    found: dict[int, dict[str, list[int]]] = {}
    if not message_ids:
        return found
    rows = db.execute(select(Reaction.message_id, Reaction.reaction, Reaction.user_id)
                      .where(Reaction.message_id.in_(message_ids)).order_by(Reaction.id))
    for message_id, reaction, user_id in rows:
        found.setdefault(message_id, {}).setdefault(reaction, []).append(user_id)
    return found


def _exists(db: Session, message: Message, user: User, reaction: str) -> bool:
    return db.scalar(select(Reaction.id).where(Reaction.message_id == message.id, Reaction.user_id == user.id,
                                               Reaction.reaction == reaction)) is not None


def reaction_event(kind: str, chat: Chat, message: Message, user: User, reaction: str) -> dict:
    """The event in UUID form, with the integer ids the integer-id surfaces show (`int_ids`)."""
    return {"type": kind, "chat_id": chat.uuid, "message_id": message.uuid, "user_id": user.uuid,
            "reaction": reaction, "timestamp": events.iso_now(),
            "int_ids": {"chat_id": chat.id, "message_id": message.id, "user_id": user.id}}
