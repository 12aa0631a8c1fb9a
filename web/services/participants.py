"""A chat's participants: count and list them, add and remove them under the chat's write lock."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from web.errors import BadRequest, Conflict, Forbidden, NotFound
from web.services.chats import VISIBLE, lock_chat, manages, participant

DIRECT_MAX_PARTICIPANTS = 2


def participant_count(db: Session, chat: Chat, deactivated: bool = False) -> int:
    """How many take part in the chat: those whose account is active, as the chat API (000) lists
    its "active participants"; with `deactivated`, every member (they keep their place in a chat)."""
    query = select(func.count()).select_from(Participant).where(Participant.chat_id == chat.id)
    if not deactivated:
        query = query.join(User, User.id == Participant.user_id).where(User.is_active.is_(True))
    return db.scalar(query) or 0


def participants_with_counts(db: Session, chat: Chat) -> list[tuple[Participant, User, int]]:
    """Each participant whose account is active, their user and how many messages they sent in the chat."""
    sent = (
        select(Message.sender_id, func.count().label("n"))
        .where(Message.chat_id == chat.id, Message.hidden.is_(False)).group_by(Message.sender_id).subquery()
    )
    rows = db.execute(
        select(Participant, User, func.coalesce(sent.c.n, 0))
        .join(User, User.id == Participant.user_id)
        .outerjoin(sent, sent.c.sender_id == Participant.user_id)
        .where(Participant.chat_id == chat.id, User.is_active.is_(True))
        .order_by(Participant.joined_at, Participant.id)
    )
    return [tuple(row) for row in rows]


def add_participant(db: Session, chat: Chat, actor: Participant, user: User | None, role: str,
                    can_send_messages: bool | None, can_upload_files: bool | None) -> Participant:
    """Owners and admins add members; channel members only read unless allowed to post.

    The checks and the insert run under the chat's write lock, so two adds at once cannot
    both pass them (the same user twice, or a third member of a DIRECT chat), and an actor
    demoted or removed meanwhile is refused (403), as in a removal. The lock takes ACTIVE chats
    only: the chat API (000), the one that adds, hides archived chats, so an add racing the
    archiving is 404, as one sent after it.
    """
    lock_chat(db, chat, statuses=VISIBLE)
    try:
        if not manages(actor_now(db, chat, actor)):
            raise Forbidden("Only the chat's owner or admins can add participants")
        if user is None or not user.is_active:
            raise NotFound("User not found")
        if role == "OWNER":
            raise BadRequest("A chat has one owner")
        if can_send_messages is None:
            can_send_messages = chat.chat_type != "CHANNEL" or role == "ADMIN"
        member = Participant(chat_id=chat.id, user_id=user.id, role=role, can_send_messages=can_send_messages,
                             can_upload_files=can_send_messages if can_upload_files is None else can_upload_files)
        check_room_for(db, chat, user)
        db.add(member)
        db.commit()
    except IntegrityError:  # added meanwhile by a writer that did not take the lock
        db.rollback()
        raise Conflict("User is already a participant") from None
    except Exception:
        db.rollback()  # release the lock now, not at the end of the request
        raise
    return member


def remove_participant(db: Session, chat: Chat, actor: Participant, user: User | None) -> None:
    """Any participant but the owner leaves (400: a chat keeps its owner); the owner removes anyone
    else, an admin members only (403). The removed user's messages stay in the chat.

    Under the chat's write lock, as adds: a removal racing the chat's archiving is 404, as one
    sent after it, and removes nobody. The actor's role is read under the lock too, which every
    change to the chat's participants holds: an actor demoted or removed meanwhile is refused as
    a removal sent after that change would be (403).
    """
    lock_chat(db, chat, statuses=VISIBLE)
    try:
        actor = actor_now(db, chat, actor)
        leaving = user is not None and user.id == actor.user_id
        if leaving and actor.role == "OWNER":
            raise BadRequest("The chat's owner cannot leave it; delete or archive the chat instead")
        if not leaving and not manages(actor):
            raise Forbidden("Only the chat's owner or admins can remove other participants")
        member = participant(db, chat, user) if user is not None else None
        if member is None:
            raise NotFound("Participant not found")
        if not leaving and actor.role != "OWNER" and member.role != "MEMBER":
            raise Forbidden("Admins can remove members only, not the chat's owner or other admins")
        db.delete(member)
        db.commit()
    except Exception:
        db.rollback()  # release the lock now, not at the end of the request
        raise


def actor_now(db: Session, chat: Chat, actor: Participant) -> Participant:
    """The actor's participant row read again under the chat's lock, which every change to the
    chat's participants holds (not as read before it); 403 if they left or were removed meanwhile."""
    now = db.scalar(select(Participant).where(Participant.chat_id == chat.id, Participant.user_id == actor.user_id)
                    .execution_options(populate_existing=True))
    if now is None:
        raise Forbidden("Access denied to this chat")
    return now


def check_room_for(db: Session, chat: Chat, user: User) -> None:
    """409 for a user already in the chat, 400 for a third member of a DIRECT chat."""
    if participant(db, chat, user) is not None:
        raise Conflict("User is already a participant")
    if chat.chat_type == "DIRECT" and participant_count(db, chat, deactivated=True) >= DIRECT_MAX_PARTICIPANTS:
        raise BadRequest("A DIRECT chat has at most 2 participants; use a GROUP chat")
