"""The chats API of 003_90b80bccb3ed44a8.txt: /api/v1/chats... and /api/v1/messages/... with integer ids.

Invalid input is 400 on this surface (the document lists no 422): its error renderer keeps
the validation list in `detail` and answers 400.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from flask.blueprints import BlueprintSetupState

from web.errors import register_renderer, render_detail

bp = Blueprint("chats_v1", __name__, url_prefix="/api/v1")

URL_PREFIXES = ("/api/v1/chats", "/api/v1/messages")


def render_error(status: int, detail: Any) -> Response:
    """`{"detail": ...}` with 400 where other surfaces answer 422."""
    return render_detail(400 if status == 422 else status, detail)


@bp.record_once
def _register_renderers(state: BlueprintSetupState) -> None:
    for prefix in URL_PREFIXES:
        register_renderer(state.app, prefix, render_error)


from web.api.chats_v1 import routes, socket  # noqa: E402,F401  (register the views)
