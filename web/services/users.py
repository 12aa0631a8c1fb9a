"""Accounts: registration, credentials, lookup."""
from __future__ import annotations

from functools import cache

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models import User
from web.errors import Conflict, Forbidden, Unauthorized
from workers import runtime


def _hash(password: str) -> str:
    return generate_password_hash(password, method=runtime.current().settings.password_hash)


@cache
def _dummy_hash(method: str) -> str:
    """A real hash to compare against when the user does not exist, so timing does not tell."""
    return generate_password_hash("parley-dummy-password", method=method)


def create_user(db: Session, email: str, username: str, password: str, role: str = "user") -> User:
    email = email.strip().lower()
    taken = db.scalar(
        select(User).where(or_(func.lower(User.email) == email, func.lower(User.username) == username.lower()))
    )
    if taken is not None:
        field = "email" if taken.email.lower() == email else "username"
        raise Conflict(f"A user with this {field} already exists")
    user = User(email=email, username=username, password_hash=_hash(password), role=role)
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict("A user with this email or username already exists") from None
    return user


def find_by_login(db: Session, login: str) -> User | None:
    """The user whose username or email is `login`, in any case (as they sign in)."""
    login = login.strip().lower()
    return db.scalar(select(User).where(or_(func.lower(User.email) == login, func.lower(User.username) == login)))


def check_credentials(db: Session, login: str, password: str) -> User:
    user = find_by_login(db, login)
    if user is None:
        check_password_hash(_dummy_hash(runtime.current().settings.password_hash), password)
        raise Unauthorized("Incorrect username or password", headers={"WWW-Authenticate": "Bearer"})
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        raise Unauthorized("Incorrect username or password", headers={"WWW-Authenticate": "Bearer"})
    return user


def find_by_uuid(db: Session, user_uuid: str) -> User | None:
    return db.scalar(select(User).where(User.uuid == user_uuid))


def require_admin(user: User) -> None:
    """403 unless `user` has the admin role."""
    if not user.is_admin:
        raise Forbidden("Admin access required")
