"""Chats and who may see them: create, list, load with access checks, lock for writes."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import Chat, Participant, User
from models.base import utcnow
from web.errors import BadRequest, Forbidden, NotFound

VISIBLE = ("ACTIVE",)
OPEN = ("ACTIVE", "ARCHIVED")  # what the surface that archives (003) still shows
MANAGERS = ("OWNER", "ADMIN")
TITLE_CHARS = 60  # a title made from a first message (001 and 004 sessions)


def title_from(message: str) -> str:
    """A chat title from its first message: whitespace runs as one space, TITLE_CHARS at most."""
    first = " ".join(message.split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


def create_chat(db: Session, owner: User, chat_type: str = "GROUP", **fields: Any) -> Chat:
    """A new chat owned by `owner`, who is its first participant.

    The chat API (000) and the chats API (003) choose the type; sessions (001, 004) and
    conversations (002) have none and are shared with any number of members: GROUP chats.
    """
    now = utcnow()
    chat = Chat(owner_id=owner.id, chat_type=chat_type, created_at=now, last_activity_at=now, updated_at=now,
                **fields)
    chat.participants.append(Participant(user_id=owner.id, role="OWNER", joined_at=now))
    db.add(chat)
    db.commit()
    return chat


def list_chats(db: Session, user: User, limit: int, offset: int,
               statuses: tuple[str, ...] = VISIBLE) -> list[Chat]:
    """The user's chats in one of `statuses`, most recently active first."""
    return list(db.scalars(
        select(Chat)
        .join(Participant, Participant.chat_id == Chat.id)
        .where(Participant.user_id == user.id, Chat.status.in_(statuses))
        .order_by(Chat.last_activity_at.desc(), Chat.id.desc())
        .limit(limit).offset(offset)
    ))


def participant(db: Session, chat: Chat, user: User) -> Participant | None:
    return db.scalar(select(Participant).where(Participant.chat_id == chat.id, Participant.user_id == user.id))


def member_chat_uuids(db: Session, user: User, chat_uuids: list[str]) -> list[str]:
    """Those of `chat_uuids` naming chats (not deleted) that `user` takes part in."""
    if not chat_uuids:
        return []
    return list(db.scalars(select(Chat.uuid).join(Participant, Participant.chat_id == Chat.id).where(
        Chat.uuid.in_(chat_uuids), Chat.status != "DELETED", Participant.user_id == user.id)))


def chat_for_member(db: Session, user: User, chat_key: str | int,
                    statuses: tuple[str, ...] = VISIBLE) -> tuple[Chat, Participant]:
    """The chat if `user` takes part in it: 404 when unknown or not in `statuses`
    (by default archived and deleted chats are hidden), else 403."""
    column = Chat.id if isinstance(chat_key, int) else Chat.uuid
    row = db.execute(  # one round trip: every chat request starts here
        select(Chat, Participant).where(column == chat_key)
        .outerjoin(Participant, and_(Participant.chat_id == Chat.id, Participant.user_id == user.id))
    ).first()
    chat, member = row if row is not None else (None, None)
    if chat is None or chat.status not in statuses:
        raise NotFound("Chat not found")
    if member is None:
        raise Forbidden("Access denied to this chat")
    return chat, member


def check_active(chat: Chat, detail: str) -> None:
    """400 `detail` for an archived chat: it stays readable, and can be deleted, but nobody adds
    to it on any surface until it is active again."""
    if chat.status != "ACTIVE":
        raise BadRequest(detail)


def manages(member: Participant) -> bool:
    """The chat's owner or one of its admins: they decide what steers every member's replies."""
    return member.role in MANAGERS


def check_may_post_as(member: Participant, role: str, managers_only: tuple[str, ...] = ("system",)) -> None:
    """403 unless the member may post a message of `role`.

    SYSTEM messages steer the AI for everyone in the chat, so only its owner or admins post
    them; a surface adds roles of its own (001: assistant messages, words put in the AI's mouth).
    """
    if role in managers_only and not manages(member):
        raise Forbidden(f"Only the chat's owner or admins can post {role.upper()} messages")


def check_may_upload(member: Participant) -> None:
    """403 for a participant without `can_upload_files`: an upload becomes every reply's context."""
    if not member.can_upload_files:
        raise Forbidden("Cannot upload files to this chat")


def lock_for_posts(db: Session, chat: Chat, member: Participant, now: datetime, counted: int,
                   archived: str | None = None) -> None:
    """`lock_chat` (statuses VISIBLE) for a writer about to add `counted` messages, read by `member`
    at `now`, with the chat's count and last activity moved in the same UPDATE; the caller then
    adds the messages and commits.

    The count is added in SQL: two members posting at once both count (an ORM `+=` writes
    back the value it read, and one of them would be lost). Hidden messages (`counted` 0) are
    not the chat's activity either: its count, last activity and the member's `last_read_at`
    stay (an exchange kept out of the history shows nothing of the chat: it reads nothing).
    """
    if not counted:
        lock_chat(db, chat, statuses=VISIBLE, archived=archived)
        return
    count = db.execute(
        update(Chat).where(Chat.id == chat.id, Chat.status.in_(VISIBLE))
        .values(message_count=Chat.message_count + counted, last_activity_at=now, updated_at=now)
        .returning(Chat.message_count).execution_options(synchronize_session=False)
    ).scalar()
    if count is None:
        refuse_write(db, chat, "Chat not found", archived)
    for key, value in (("message_count", count), ("last_activity_at", now), ("updated_at", now)):
        set_committed_value(chat, key, value)
    db.execute(update(Participant).where(Participant.id == member.id).values(last_read_at=now)
               .execution_options(synchronize_session=False))
    set_committed_value(member, "last_read_at", now)


def mark_read_up_to(db: Session, member: Participant, at: datetime) -> None:
    """Move the member's `last_read_at` forward to `at`, never back; the caller commits.
    In SQL, so a later mark made meanwhile (a post, a listed page, a READ) is kept."""
    db.execute(update(Participant).where(Participant.id == member.id, or_(
        Participant.last_read_at.is_(None), Participant.last_read_at < at)).values(last_read_at=at))


def lock_chat(db: Session, chat: Chat, missing: str = "Chat not found", statuses: tuple[str, ...] = OPEN,
              archived: str | None = None) -> None:
    """Hold the chat's write lock until the transaction ends; 404 `missing` (rolled back) when
    the chat was deleted since the request read it, instead of a foreign key error on its writes.
    A writer adding to the chat passes `statuses` VISIBLE: a chat archived since is 400 `archived`
    (404 `missing` on a surface that hides archived chats: `archived` None), as a request sent
    after the archiving would be answered, and nothing is added to it.

    A no-op UPDATE rather than SELECT ... FOR UPDATE: PostgreSQL locks the row either way (and
    waits for a deletion or archiving in progress, then checks the status it committed), and on
    SQLite (no row locks, where a read does not even start the transaction) only a write takes
    the database's one write lock before the checks read. The status condition rides on that
    UPDATE: no extra round trip unless it refuses.
    """
    locked = db.execute(update(Chat).where(Chat.id == chat.id, Chat.status.in_(statuses))
                        .values(updated_at=Chat.updated_at).execution_options(synchronize_session=False)).rowcount
    if locked != 1:
        refuse_write(db, chat, missing, archived)


def refuse_write(db: Session, chat: Chat, missing: str, archived: str | None) -> None:
    """The chat's lock was refused: roll back, then 400 `archived` for a chat archived meanwhile
    (when the surface shows archived chats), else 404 `missing`."""
    status = db.scalar(select(Chat.status).where(Chat.id == chat.id))
    db.rollback()
    if status == "ARCHIVED" and archived is not None:
        raise BadRequest(archived)
    raise NotFound(missing)


def change_status(db: Session, chat: Chat, actor: Participant, status: str,
                  missing: str = "Chat not found") -> Chat:
    """Archive or restore a chat (its owner or admins), or delete it (its owner only, as every
    surface that deletes: it is final and takes the chat from every member).

    The update is conditional on the chat not being DELETED: a change racing a delete (both
    read the chat before either wrote) answers 404 `missing`, as for a chat already deleted,
    instead of bringing it back.
    """
    if actor.role not in ("OWNER", "ADMIN"):
        raise Forbidden("Only the chat's owner or admins can change its status")
    if status == "DELETED" and actor.role != "OWNER":
        raise Forbidden("Only the chat's owner can delete it")
    if chat.status == status:
        return chat
    write_unless_deleted(db, chat, {"status": status}, missing=missing)
    return chat


def write_unless_deleted(db: Session, chat: Chat, values: dict[str, Any], missing: str) -> None:
    """Write `values` (and `updated_at`) to the chat and commit, unless it is DELETED by now or
    deleted for good (001/004 delete sessions): then 404 `missing`, rolled back.

    One conditional UPDATE, so a change racing a delete (both read the chat before either
    wrote) cannot bring the chat back, nor fail on the row that is gone.
    """
    done = db.execute(update(Chat).where(Chat.id == chat.id, Chat.status != "DELETED")
                      .values(**values, updated_at=utcnow()))
    if done.rowcount != 1:
        db.rollback()
        raise NotFound(missing)
    db.commit()
    db.refresh(chat)
