"""The chat page at `/`: static HTML, CSS and JavaScript over the public API."""
from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("pages", __name__)


@bp.get("/")
def chat_page():
    return current_app.send_static_file("index.html")
