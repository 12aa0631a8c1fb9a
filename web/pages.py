"""The chat page at `/`: static HTML, CSS and JavaScript over the public API."""
from __future__ import annotations

from flask import Blueprint, current_app

from web.api.described import responds

bp = Blueprint("pages", __name__)


@bp.get("/")
@responds(200, media_type="text/html", description="The chat page")
def chat_page():
    """The chat page: sign up or in, chats, replies streaming over the WebSocket."""
    return current_app.send_static_file("index.html")
