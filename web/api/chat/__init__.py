"""The chat API of 000_f1dc8c9e76be2918.txt: /api/v1/chat/... with UUID ids."""
from __future__ import annotations

from flask import Blueprint

from web.api.parsing import canonical_uuids

bp = Blueprint("chat", __name__, url_prefix="/api/v1/chat")
bp.url_value_preprocessor(canonical_uuids)

from web.api.chat import ai_message, routes, service_routes, socket  # noqa: E402,F401  (register the views)
