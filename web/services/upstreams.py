"""Health of the AI upstreams: live checks, breaker state, and test completions via a worker."""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import Redis

from sqlalchemy.orm import Session

from models import User
from models.base import new_uuid
from web.errors import ApiError, BadRequest
from web.services import replies
from workers import leases, queues, runtime, upstream
from workers.breaker import CLOSED, HALF_OPEN, OPEN
from workers.events import iso
from workers.user_keys import key_for_user

HEALTH_TIMEOUT_S = 5.0
NO_API_KEY = "OpenAI API key not configured: set one in Settings to chat with AI"


def _iso_ts(value: float | None) -> str | None:
    return iso(datetime.fromtimestamp(value, timezone.utc)) if value is not None else None


def breaker_view(redis: Redis, name: str) -> dict[str, Any]:
    settings = runtime.current().settings
    return upstream.breaker(redis, settings, name).status().as_dict(_iso_ts)


def service_url(source: upstream.Upstream | None) -> str | None:
    """The upstream's address as every signed-in user is shown it: without the credentials
    (`https://user:password@gateway/v1`) or query string an operator may have put in its URL."""
    if source is None:
        return None
    parts = urlsplit(source.base_url or "https://api.openai.com/v1")
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


# The reply texts speak of a reply; a health check made none.
HEALTH_ERROR_TEXT = {"upstream_error": "The AI service did not answer the model list request.",
                     "upstream_timeout": "The AI service did not answer the model list request in time."}


def check(redis: Redis, source: upstream.Upstream | None, name: str) -> dict[str, Any]:
    """Ask the upstream for its model list; healthy if it answers in time."""
    state = breaker_view(redis, name)
    health: dict[str, Any] = {"circuit_breaker_state": state["state"], "failure_count": state["failure_count"],
                              "service_url": service_url(source)}
    if source is None:
        return {"status": "unconfigured", **health, "error": "No API key or address is configured"}
    started = time.monotonic()
    try:
        upstream.client_for(source, HEALTH_TIMEOUT_S).models.list()
    except Exception as exc:
        code = upstream.error_code(exc)
        error = HEALTH_ERROR_TEXT.get(code) or upstream.ERROR_TEXT[code]
        return {"status": "unhealthy", **health, "error": f"{error} ({type(exc).__name__})"}
    elapsed = int((time.monotonic() - started) * 1000)
    status = "healthy" if state["state"] == CLOSED else "degraded"
    return {"status": status, "response_time_ms": elapsed, **health}


def primary_health(redis: Redis) -> dict[str, Any]:
    return check(redis, upstream.primary_or_none(runtime.current().settings), upstream.PRIMARY)


def fallback_available(redis: Redis) -> bool:
    settings = runtime.current().settings
    source = upstream.fallback(settings)
    return source is not None and breaker_view(redis, upstream.FALLBACK)["state"] != OPEN


def primary_is_open(redis: Redis, user_key: tuple[str, str | None] | None = None) -> bool:
    """Would the primary refuse a call now: OPEN, or HALF_OPEN with its one trial under way?

    Never for a user whose own key has its own address: that service has no breaker."""
    if upstream.has_own_address(runtime.current().settings, user_key):
        return False
    guard = upstream.breaker(redis, runtime.current().settings, upstream.PRIMARY)
    state = guard.status().state
    return state == OPEN or (state == HALF_OPEN and guard.trial_taken())


def key_for_reply(db: Session, user: User, primary_only: bool = False) -> tuple[str, str | None] | None:
    """The user's own upstream key and address (None: the server's) for a reply the user asks for;
    400 when no upstream of the reply has a key, before anything is stored: the reply could only
    end FAILED (`no_api_key`), and a retry would store the messages again."""
    settings = runtime.current().settings
    user_key = key_for_user(db, settings, user.id)
    if not upstream.has_api_key(settings, user_key, primary_only):
        raise BadRequest(NO_API_KEY)
    return user_key


def probe(redis: Redis, user: User, target: str, payload: dict[str, Any], name: str) -> dict[str, Any]:
    """Run a test completion on a worker and wait for it (504 if it does not finish in time);
    `name` says in an error what did not finish ("Prompt preview").

    It takes one of the user's concurrent-reply slots (429 when none is free), which the job frees:
    a test keeps a reply worker busy as a reply does."""
    settings = runtime.current().settings
    wait_s = math.ceil(settings.ai_message_wait_s)  # RQ's result wait and job timeout are whole seconds, not 0
    lease_id = new_uuid()
    replies.take_stream_slot(redis, user, lease_id)
    try:
        job = queues.enqueue_probe(redis, target, payload, timeout_s=wait_s, lease=(user.id, lease_id))
    except Exception:
        leases.release(redis, leases.replies_key(user.id), lease_id)
        raise
    result = job.latest_result(timeout=wait_s)
    if result is None:
        raise ApiError(f"{name} did not finish within {wait_s} seconds", status=504)
    if result.type != result.Type.SUCCESSFUL:
        raise ApiError(f"{name} failed on the worker", status=502)
    return result.return_value
