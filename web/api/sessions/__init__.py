"""The API of 001_384b780f9df3a974.txt: SSE chat sessions, history, PDF context, prompts."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sessions", __name__)

from web.api.sessions import files, prompts, routes  # noqa: E402,F401  (register the views)
