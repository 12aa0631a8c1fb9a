"""The conversations API of 002_3e92744ca81cdc19.txt: /chat/conversations, analytics, search and
agents, integer ids, every answer and error in the `{success, message, data}` envelope."""
from __future__ import annotations

from flask import Blueprint

from web.api.conversations.envelope import PREFIXES, EnvelopeError, render_error
from web.errors import register_renderer

bp = Blueprint("conversations", __name__, url_prefix="/chat")


@bp.record_once
def _render_errors_in_envelope(state) -> None:
    for prefix in PREFIXES:
        register_renderer(state.app, prefix, render_error, EnvelopeError)


from web.api.conversations import (agent_routes, analytics_routes, message_routes,  # noqa: E402,F401
                                   routes)  # (register the views)
