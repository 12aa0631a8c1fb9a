"""`/health` (004): the database, Redis, workers, the AI upstream and the embedding provider."""
from __future__ import annotations

import time
from importlib import metadata
from typing import Any, Callable

from rq import Worker
from sqlalchemy import text

from web.services import upstreams
from workers import embedding, queues, runtime


def version() -> str:
    try:
        return metadata.version("parley")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def timed(check: Callable[[], object]) -> dict[str, Any]:
    """Run one check: healthy with its time, or unhealthy with the error's kind."""
    started = time.monotonic()
    try:
        check()
    except Exception as exc:
        return {"status": "unhealthy", "error": type(exc).__name__}
    return {"status": "healthy", "response_time_ms": int((time.monotonic() - started) * 1000)}


def database_check() -> dict[str, Any]:
    def ping() -> None:
        with runtime.current().engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return timed(ping)


def redis_check() -> dict[str, Any]:
    return timed(runtime.current().redis.ping)


def workers_check() -> dict[str, Any]:
    """How many RQ workers serve each queue (registered and heart-beating)."""
    try:
        found = Worker.all(connection=runtime.current().redis)
    except Exception as exc:
        return {"status": "unknown", "error": type(exc).__name__}
    counts = {name: sum(1 for w in found if name in w.queue_names()) for name in queues.ALL}
    return {"status": "healthy" if all(counts.values()) else "degraded", "queues": counts}


def upstream_check() -> dict[str, Any]:
    try:
        found = upstreams.primary_health(runtime.current().redis)
    except Exception as exc:
        return {"status": "unknown", "error": type(exc).__name__}
    return {k: v for k, v in found.items() if k in ("status", "response_time_ms", "error", "circuit_breaker_state")}


def health() -> tuple[dict[str, Any], int]:
    """The report and its status code: 503 when the database or Redis is down."""
    checks = {"database": database_check(), "redis": redis_check()}
    essential_ok = all(c["status"] == "healthy" for c in checks.values())
    checks["workers"] = workers_check() if checks["redis"]["status"] == "healthy" else {"status": "unknown"}
    checks["upstream"] = upstream_check()
    checks["embeddings"] = embedding.describe(runtime.current().settings)
    if not essential_ok:
        status = "unhealthy"
    elif all(checks[name]["status"] == "healthy" for name in ("workers", "upstream")):
        status = "healthy"
    else:
        status = "degraded"
    return {"status": status, "version": version(), **checks}, 200 if essential_ok else 503
