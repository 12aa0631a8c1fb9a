"""The web process's Redis client (from the runtime)."""
from __future__ import annotations

from redis import Redis

from workers import runtime


def get_redis() -> Redis:
    return runtime.current().redis
