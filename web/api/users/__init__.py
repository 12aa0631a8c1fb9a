"""/api/v1/users: the signed-in user's own settings (their upstream API keys)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("users", __name__, url_prefix="/api/v1/users")

from web.api.users import routes  # noqa: E402,F401  (register the views)
