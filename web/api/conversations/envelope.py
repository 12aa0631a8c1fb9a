"""The conversations API's body, `{success, message, data}`, for answers and for every error.

Errors on this surface's URLs (including 401 from auth, 404/405 from routing and 429 from
the rate limit) render as `{success: false, message, data: null}`, plus `errors` (the
field list) for validation failures and `error_code` where a reply failed.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from flask import Response, jsonify
from pydantic import BaseModel, ConfigDict

from web.errors import FieldError

# The URL spaces of 002 (and its agents), under the /chat prefix 004 shares.
PREFIXES = ("/chat/conversations", "/chat/agents", "/chat/analytics", "/chat/search")
RATE_TEXT = re.compile(r"^\d+ per ")
SHOWN_FIELD_ERRORS = 3


class EnvelopeError(BaseModel):
    """Every error of this surface; failed replies add `error_code` (and what the document shows)."""
    model_config = ConfigDict(extra="allow")

    success: Literal[False]
    message: str
    data: None
    errors: list[FieldError] | None = None


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
    if status == 429 and RATE_TEXT.match(str(detail)):
        return f"Too many requests (limit {detail}); try again later"
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
