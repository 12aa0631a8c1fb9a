"""What every request must pass before a view reads it: a body under the size cap, a URL
that is UTF-8 text, integer path segments that can name a row (ids are 32-bit keys).

The body cap is `MAX_BODY_BYTES` (1 MB) on every URL; the upload views raise it to their
10 MB file limit plus room for the multipart framing. Bigger bodies are 413, also when sent
chunked (without a Content-Length).
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from models.base import MAX_KEY
from web.errors import BadRequest, NotFound
from web.services.documents import MAX_UPLOAD_BYTES
from workers.settings import Settings

UPLOAD_BODY_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024  # the file plus its multipart framing and form fields


class KeyConverter(IntegerConverter):
    """`<int:...>` in routes: at most ten ASCII digits, so a longer number matches no route (404).

    Werkzeug's own takes any run of digits: a 23-digit id reached PostgreSQL (which refused
    it) and a 5,000-digit one failed Python's int() itself. Ten digits can still exceed the
    32-bit keys: `refuse_unknown_keys` answers those 404 (failing here would make werkzeug
    answer 405 when the URL has other methods)."""

    regex = "[0-9]{1,10}"


def refuse_unknown_keys() -> None:
    if any(isinstance(value, int) and value > MAX_KEY for value in (request.view_args or {}).values()):
        raise NotFound(f"Not found: ids are at most {MAX_KEY}")


def check_url() -> None:
    """The path and query string must be UTF-8 (werkzeug would quietly replace or keep the bad
    bytes) and the path must hold no NUL (no id or name contains one; PostgreSQL refuses it)."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # the path as sent, still %-encoded
    path = (unquote_to_bytes(raw.encode("latin-1").split(b"?", 1)[0]) if raw
            else environ.get("PATH_INFO", "").encode("latin-1"))
    try:
        path.decode("utf-8")
    except UnicodeError:
        raise BadRequest("The URL path is not valid UTF-8") from None
    if b"\x00" in path:
        raise BadRequest("The URL path must not contain NUL characters")
    try:
        unquote_to_bytes(request.query_string).decode("utf-8")
    except UnicodeError:
        raise BadRequest("The query string is not valid UTF-8") from None


def takes_upload(view: Callable) -> Callable:
    """Let this view's request body be as large as an upload (before anything reads it)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request.max_content_length = UPLOAD_BODY_BYTES
        return view(*args, **kwargs)

    return wrapper


def init_app(app: Flask, settings: Settings) -> None:
    """Before any route is added: the converter applies to routes as they are registered."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.url_map.converters["int"] = KeyConverter
    app.before_request(check_url)
    app.before_request(refuse_unknown_keys)
