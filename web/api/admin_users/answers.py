"""What the user administration endpoints answer, for /openapi.json."""
from __future__ import annotations

from web.api.described import Answer
from web.auth.answers import UserOut


class UserList(Answer):
    users: list[UserOut]
    total_count: int
    limit: int
    offset: int
