"""What a process needs to run jobs: database sessions, Redis and the reply registry.

Configured once per process by the worker entry or by the web app factory (embedded
mode), never at import time.
"""
from __future__ import annotations

from dataclasses import dataclass

import fakeredis
from redis import BlockingConnectionPool, Redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.base import make_engine, make_sessionmaker
from workers.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    redis: Redis


_current: Runtime | None = None
_embedded_server: fakeredis.FakeServer | None = None
SOCKET_TIMEOUT_S = 30  # above every blocking read Parley makes outside RQ's own (RQ raises it for those)


def connect_redis(settings: Settings) -> Redis:
    """A Redis client for the configured URL, or the process's shared in-process fakeredis."""
    global _embedded_server
    if settings.redis_url:
        # Blocking: past `redis_max_connections` a caller waits for a free connection (up to
        # 20 s) instead of failing, which matters with hundreds of greenlets or threads.
        # redis-py's own socket timeout (5 s) would cut the web tier's blocking reads that wait
        # up to 5 s for a job's result (uploads): those answered 500 with a TimeoutError.
        pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=settings.redis_max_connections,
                                               timeout=20, socket_timeout=SOCKET_TIMEOUT_S)
        return Redis(connection_pool=pool)
    if _embedded_server is None:
        _embedded_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_embedded_server)


def configure(settings: Settings) -> Runtime:
    """Build (or rebuild) this process's runtime from settings."""
    global _current
    engine = make_engine(settings.resolved_database_url())
    _current = Runtime(settings, engine, make_sessionmaker(engine), connect_redis(settings))
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("workers.runtime.configure() has not been called in this process")
    return _current


def session() -> Session:
    return current().sessions()
