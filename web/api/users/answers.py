"""What the users API answers about a user's own keys (never the key itself)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from web.api.described import Answer


class KeySet(Answer):
    provider: Literal["openai"]
    is_set: Literal[True]
    last4: str
    base_url: str | None
    updated_at: datetime


class KeyUnset(Answer):
    provider: Literal["openai"]
    is_set: Literal[False]
    last4: None
    base_url: None
    updated_at: None
