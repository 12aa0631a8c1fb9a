"""How many documents, and how many bytes of them, one user keeps: library documents (004) and
session files (001) together, checked before an upload is stored."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import Document, User
from web.errors import ApiError, Conflict
from workers import runtime

MB = 1024 * 1024
MAKE_ROOM = "delete documents to upload more (DELETE /documents/{id}, a session file by its document_id)"
SCOPE = "(library documents and session files together)"


def lock_uploads(db: Session, user: User) -> None:
    """Lock the user's row until the transaction ends (a no-op UPDATE, as chats.lock_chat takes,
    so SQLite takes its write lock too): a user's uploads are checked and stored one at a time,
    so two at once cannot both take the last room, nor both store the same file."""
    db.execute(update(User).where(User.id == user.id).values(role=User.role))


def check_room(db: Session, user: User, size: int) -> None:
    """Check, under `lock_uploads`, that one more document of `size` bytes fits the user's limits:
    409 past MAX_DOCUMENTS_PER_USER, 413 past MAX_DOCUMENT_BYTES_PER_USER (rolled back either way)."""
    settings = runtime.current().settings
    count, used = db.execute(select(func.count(), func.coalesce(func.sum(Document.file_size), 0))
                             .where(Document.owner_id == user.id)).one()
    if count >= settings.max_documents_per_user:
        db.rollback()
        raise Conflict(f"Document limit reached: you keep {count} documents and an account may keep "
                       f"{settings.max_documents_per_user} {SCOPE}; {MAKE_ROOM}")
    if used + size > settings.max_document_bytes_per_user:
        db.rollback()
        raise ApiError(f"Document storage limit reached: your documents take {shown_size(used)} of the "
                       f"{shown_size(settings.max_document_bytes_per_user)} an account may keep {SCOPE}, "
                       f"and this file is {shown_size(size)}; {MAKE_ROOM}", status=413)


def shown_size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{size} bytes"
