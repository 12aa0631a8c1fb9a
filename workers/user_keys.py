"""Users' own upstream keys, read where a reply is generated (the key never travels in a job)."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import UserApiKey
from workers.secrets import UnreadableSecret, decrypt, settings_secret
from workers.settings import Settings

log = logging.getLogger(__name__)


def stored_key(db: Session, user_id: int, provider: str = "openai") -> UserApiKey | None:
    """The user's stored (encrypted) key for `provider`, if any."""
    return db.scalar(select(UserApiKey).where(UserApiKey.user_id == user_id, UserApiKey.provider == provider))


def key_for_user(db: Session, settings: Settings, user_id: int,
                 provider: str = "openai") -> tuple[str, str | None] | None:
    """The user's own (api_key, base_url) for `provider`, decrypted; None when there is none.

    A key that no longer decrypts (SECRET_KEY changed) counts as none, so the reply falls
    back to the server's key, and is logged without any part of it.
    """
    row = stored_key(db, user_id, provider)
    if row is None:
        return None
    try:
        return decrypt(settings_secret(settings), row.encrypted_key), row.base_url
    except UnreadableSecret:
        log.warning("the %s API key of user %d cannot be decrypted (was SECRET_KEY changed?)", provider, user_id)
        return None
