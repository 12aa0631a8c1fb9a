"""Users' own upstream API keys: set, find, remove. Keys are encrypted before they are stored."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models import UserApiKey
from web.errors import NotFound
from web.services import rows
from workers.secrets import encrypt, settings_secret
from workers.settings import Settings
from workers.user_keys import stored_key


def find_key(db: Session, user_id: int, provider: str) -> UserApiKey | None:
    """The user's stored key for `provider` (encrypted), if any."""
    return stored_key(db, user_id, provider)


def set_key(db: Session, settings: Settings, user_id: int, provider: str, api_key: str,
            base_url: str | None) -> UserApiKey:
    """Store the user's key for `provider`, replacing any earlier one (and its base URL)."""
    encrypted = encrypt(settings_secret(settings), api_key)
    try:
        return _store(db, user_id, provider, encrypted, base_url, api_key[-4:])
    except (IntegrityError, StaleDataError):
        # a concurrent PUT inserted the row first (replace that one), or a DELETE removed the
        # one read (store the key anew)
        db.rollback()
        return _store(db, user_id, provider, encrypted, base_url, api_key[-4:])


def _store(db: Session, user_id: int, provider: str, encrypted: str, base_url: str | None,
           last4: str) -> UserApiKey:
    row = stored_key(db, user_id, provider) or UserApiKey(user_id=user_id, provider=provider)
    row.encrypted_key, row.base_url, row.last4 = encrypted, base_url, last4
    db.add(row)
    db.commit()
    return row


def delete_key(db: Session, user_id: int, provider: str) -> None:
    """Remove the user's key for `provider`; NotFound when none is set."""
    row = stored_key(db, user_id, provider)
    if row is None:
        raise NotFound("No API key is set")
    rows.delete_row(db, row, "No API key is set")
