"""What admins do to accounts: list them, deactivate or reactivate them, change their role.

Shared by `/api/v1/admin/users` and the `flask set-user` command. Each change is logged
with who made it. A deactivated user's tokens are refused at their next request (the
database says so); their open sockets and streams notice a Redis marker set here.
"""
from __future__ import annotations

import logging

from redis import Redis
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models import User
from web.auth import tokens
from web.errors import BadRequest, Forbidden, NotFound
from web.services import users

log = logging.getLogger(__name__)

OPERATOR = "an operator (flask set-user)"  # who changes a user from the command line
OWN_ACCOUNT = "You cannot deactivate your own account or remove your own admin role: another admin can"


def list_users(db: Session, search: str | None, is_active: bool | None, limit: int,
               offset: int) -> tuple[list[User], int]:
    """A page of the users, oldest account first, and how many match: those whose username or
    email contains `search` (any case; `%` and `_` are text), active or not as `is_active` says."""
    conditions = []
    if search:
        wanted = search.lower()
        conditions.append(or_(func.lower(User.username).contains(wanted, autoescape=True),
                              func.lower(User.email).contains(wanted, autoescape=True)))
    if is_active is not None:
        conditions.append(User.is_active.is_(is_active))
    total = db.scalar(select(func.count(User.id)).where(*conditions)) or 0
    found = db.scalars(select(User).where(*conditions).order_by(User.id).limit(limit).offset(offset))
    return list(found), total


def find_user(db: Session, user_uuid: str) -> User:
    """The user whose `id` (UUID) the API shows; 404 when there is none."""
    user = users.find_by_uuid(db, user_uuid)
    if user is None:
        raise NotFound("User not found")
    return user


def change_user(db: Session, redis: Redis, user: User, is_active: bool | None = None, role: str | None = None,
                admin: User | None = None) -> User:
    """Set the user's `is_active` and `role` (None keeps it), for `admin` (None: an operator at the
    command line). An admin may not deactivate or demote themselves, so the last admin cannot
    lock everyone out.

    The marker is written under the account's row lock, before the commit: a change racing this
    one waits for the lock and writes its marker after, so the marker ends as the database does.
    It is put back if the commit fails. The marker of a given `is_active` is written even when the
    value stays: after a change whose marker Redis did not take (a 503), the same request again
    puts it right."""
    if admin is not None and user.id == admin.id and (is_active is False or role not in (None, "admin")):
        raise BadRequest(OWN_ACCOUNT)
    lock_rows(db, user, admin)
    was_active = user.is_active
    changes = {name: [getattr(user, name), value] for name, value in (("is_active", is_active), ("role", role))
               if value is not None and getattr(user, name) != value}
    for name, (_, value) in changes.items():
        setattr(user, name, value)
    try:
        if is_active is not None:
            tokens.mark_deactivated(redis, user.id, not is_active)
        db.commit()
    except Exception:
        db.rollback()
        if is_active is not None and is_active != was_active:
            tokens.mark_deactivated(redis, user.id, not was_active)
        raise
    if changes:
        by = admin.username if admin is not None else OPERATOR
        told = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changes.items())
        log.info("%s changed user %s: %s", by, user.username, told,
                 extra={"admin": by, "user": user.username, "user_id": user.uuid, "changes": changes})
    return user


def lock_rows(db: Session, user: User, admin: User | None) -> None:
    """Hold the write locks of the account (and of `admin`'s), then check `admin` still is an active
    admin (403 if not): two admins demoting each other at once would otherwise leave none. Locked
    in id order so that pair waits rather than deadlocks; by no-op UPDATEs, as `chats.lock_chat`
    explains."""
    for user_id in sorted({user.id} | ({admin.id} if admin is not None else set())):
        db.execute(update(User).where(User.id == user_id).values(role=User.role)
                   .execution_options(synchronize_session=False))
    if admin is not None and db.scalar(select(User.id).where(User.id == admin.id, User.role == "admin",
                                                              User.is_active.is_(True))) is None:
        db.rollback()
        raise Forbidden("Admin access required")
    db.refresh(user)  # as committed by whoever held the lock before
