"""What the auth endpoints answer, as /openapi.json describes it."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from web.api.described import Answer


class UserOut(Answer):
    id: str
    user_id: int
    email: str
    username: str
    role: Literal["user", "admin"]
    is_active: bool
    created_at: datetime


class AccessToken(Answer):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class TokenPair(AccessToken):
    refresh_token: str


class LoggedOut(Answer):
    detail: Literal["Logged out"]
