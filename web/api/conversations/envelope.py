"""The conversations API's body, `{success, message, data}`, for answers and for every error.

Errors on this surface's URLs (including 401 from auth, 404/405 from routing and 429 from
the rate limit) render as `{success: false, message, data: null}`, plus `errors` (the
field list) for validation failures; a failed AI response adds `error_code` and shows the
reply in `data` (`EnvelopeError` describes them all).
"""
from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify

from web.api.conversations.answers import sometimes
from web.api.described import Answer
from web.errors import FieldError
from workers.upstream import ERROR_TEXT

# The URL spaces of 002 (and its agents), under the /chat prefix 004 shares.
PREFIXES = ("/chat/conversations", "/chat/agents", "/chat/analytics", "/chat/search")
SHOWN_FIELD_ERRORS = 3


# Why an AI response failed: the codes of the replies' `ai_error` event, or a stop.
ReplyErrorCode = Literal[(*ERROR_TEXT, "cancelled")]  # type: ignore[valid-type]


class UnfinishedReply(Answer):
    """The AI response still running when the wait ended (504): it is stored when it ends."""
    message_id: int


class FailedReply(Answer):
    """The AI response that failed or was stopped, with the text it got before."""
    message_id: int
    partial_content: str


class EnvelopeError(Answer):
    """Every error of this surface. `data` is null except for a failed (or unfinished) AI response."""
    success: Literal[False]
    message: str
    data: FailedReply | UnfinishedReply | None
    errors: list[FieldError] = sometimes("The invalid fields (422)")
    error_code: ReplyErrorCode = sometimes("Why the AI response failed")


def ok(message: str, data: Any, status: int = 200) -> tuple[Response, int]:
    return jsonify({"success": True, "message": message, "data": data}), status


def found(count: int, noun: str) -> str:
    return f"Found {count} {noun}{'' if count == 1 else 's'}"


def error_message(status: int, detail: Any) -> str:
    if isinstance(detail, dict):
        return str(detail.get("message", ""))
    if isinstance(detail, list):
        shown = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in detail[:SHOWN_FIELD_ERRORS])
        return f"Invalid request: {shown}"
    return str(detail)


def render_error(status: int, detail: Any) -> Response:
    """The error body of this surface (registered for PREFIXES with web.errors.register_renderer)."""
    body: dict[str, Any] = {"success": False, "message": error_message(status, detail), "data": None}
    if isinstance(detail, dict):
        body.update((key, value) for key, value in detail.items() if key != "message")
    elif isinstance(detail, list):
        body["errors"] = detail
    response = jsonify(body)
    response.status_code = status
    return response
