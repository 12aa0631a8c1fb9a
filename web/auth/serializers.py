"""A user as the API shows one (docs/api.md): never the password hash."""
from __future__ import annotations

from models import User
from workers.events import iso


def user_view(user: User) -> dict:
    return {
        "id": user.uuid, "user_id": user.id, "email": user.email, "username": user.username,
        "role": user.role, "is_active": user.is_active, "created_at": iso(user.created_at),
    }
