"""/api/v1/admin: user administration for admins (not in the documents; see docs/api.md)."""
from __future__ import annotations

from flask import Blueprint

from web.api.parsing import canonical_uuids

bp = Blueprint("admin_users", __name__, url_prefix="/api/v1/admin")
bp.url_value_preprocessor(canonical_uuids)

from web.api.admin_users import routes  # noqa: E402,F401  (register the views)
