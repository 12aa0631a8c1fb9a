"""Per-user request rate across every route, surface and process (Flask-Limiter on Redis)."""
from __future__ import annotations

from flask import Flask, Response, g, request
from flask_limiter import Limiter

from web.auth.tokens import claims_of, request_token
from workers import runtime
from workers.settings import Settings


def rate_key() -> str:
    """The user behind the request's token, found as the view finds it (a URL token only on the
    routes that read one); the client address when there is no valid token."""
    token = request_token()
    if token:
        try:
            return f"user:{claims_of(token)['sub']}"
        except Exception:
            pass
    return f"ip:{request.remote_addr}"


def current_rate() -> str:
    return runtime.current().settings.rate_limit


limiter = Limiter(rate_key, application_limits=[current_rate], headers_enabled=True,
                  key_prefix="parley:rate")


def init_app(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    if settings.redis_url:
        # Share the process's (blocking, sized) pool: a pool of its own would cap at redis-py's
        # default 100 connections and fail requests under load instead of waiting.
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"connection_pool": runtime.current().redis.connection_pool}
    app.after_request(retry_after_only_when_refused)  # runs after the limiter's own hook, made next
    limiter.init_app(app)


def retry_after_only_when_refused(response: Response) -> Response:
    """Flask-Limiter puts its window's reset in `Retry-After` on every response, and over ours (5 s
    for a free streaming slot): a client waited a minute to retry. Keep it on refusals only, ours as
    we set it."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    elif "retry_after" in g:
        response.headers["Retry-After"] = g.retry_after
    return response
