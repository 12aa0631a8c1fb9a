"""Typed service errors and the one place that turns errors into responses.

Each API surface renders errors in its documented body; a surface registers its renderer
for its URL prefix. The default renders `{"detail": ...}`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from flask import Flask, Response, current_app, g, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from web.api.described import Answer
from workers.logs import new_request_id

log = logging.getLogger(__name__)

Renderer = Callable[[int, Any], Response]
RETRY_UNREACHABLE_S = 5  # Retry-After when Redis or the database cannot be reached


class ApiError(Exception):
    status = 400

    def __init__(self, detail: Any, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


class TooManyRequests(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503


class FieldError(Answer):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(Answer):
    """`{"detail": ...}`: what is wrong, or the invalid fields (422; 400 on the 003 surface)."""
    detail: str | list[FieldError]


def field_error(loc: list[str | int], msg: str, kind: str = "value_error") -> Unprocessable:
    """A 422 in the validation-list shape, for checks pydantic cannot make alone."""
    return Unprocessable([{"loc": loc, "msg": msg, "type": kind}])


def validation_details(exc: ValidationError, source: str) -> list[dict[str, Any]]:
    return [
        {"loc": [source, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def render_detail(status: int, detail: Any) -> Response:
    response = jsonify({"detail": detail})
    response.status_code = status
    return response


def register_renderer(app: Flask, url_prefix: str, renderer: Renderer,
                      body: type[BaseModel] = ErrorBody) -> None:
    """Render errors under `url_prefix` with `renderer` (longest prefix wins); `body` describes them."""
    renderers = app.extensions.setdefault("error_renderers", [])
    renderers.append((url_prefix, renderer, body))
    renderers.sort(key=lambda item: len(item[0]), reverse=True)


def error_body(app: Flask, path: str) -> type[BaseModel]:
    """The model of the error body served under `path` (for /openapi.json)."""
    return next((b for prefix, _, b in app.extensions.get("error_renderers", []) if path.startswith(prefix)),
                ErrorBody)


def render(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    renderers = current_app.extensions.get("error_renderers", [])
    renderer = next((r for prefix, r, _ in renderers if request.path.startswith(prefix)), render_detail)
    response = renderer(status, detail)
    response.headers.update(headers or {})
    if headers and "Retry-After" in headers:
        g.retry_after = headers["Retry-After"]  # web.limits puts it back over Flask-Limiter's
    return response


def lost_connection(exc: OperationalError) -> bool:
    """Whether the database could not be connected to (no statement ran) or dropped the connection."""
    return exc.statement is None or exc.connection_invalidated


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return render(exc.status, exc.detail, exc.headers)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return render(422, validation_details(exc, "body"))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit, length = request.max_content_length, request.content_length
        if limit is not None and (length is None or length > limit):
            return render(413, f"Request body too large: this URL takes at most {limit} bytes")
        # Else werkzeug's form parser refused a field or the number of parts (it does not say which).
        return render(413, f"Form field too large: fields other than the file take at most "
                           f"{request.max_form_memory_size} bytes each, and a form at most "
                           f"{request.max_form_parts} parts")

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded) -> Response:
        """Flask-Limiter's description is the bare limit ("100 per 1 minute"): say what it is."""
        return render(429, f"Too many requests (at most {exc.description})")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return render(exc.code or 500, exc.description, headers)

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    @app.errorhandler(OperationalError)
    def _unreachable(exc: Exception) -> Response:
        """A service we depend on is down: a 503 a client may retry, not a bug's 500. Other
        database errors of that class (an SQL mistake on SQLite, a deadlock) stay 500s."""
        if isinstance(exc, OperationalError) and not lost_connection(exc):
            return _unexpected(exc)
        request_id = g.get("request_id") or new_request_id()
        service = "the database" if isinstance(exc, OperationalError) else "Redis"
        log.error("%s unreachable (request %s) on %s %s: %s", service, request_id, request.method, request.path,
                  type(exc).__name__)
        return render(503, f"Service temporarily unavailable: {service} could not be reached; try again "
                           f"(request id {request_id})", {"Retry-After": str(RETRY_UNREACHABLE_S)})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The id of the request's log lines and X-Request-ID header (a fresh one if the error
        # came before web.observability gave the request its id).
        request_id = g.get("request_id") or new_request_id()
        log.exception("unhandled error (request %s) on %s %s", request_id, request.method, request.path)
        return render(500, f"Internal server error (request id {request_id})")
