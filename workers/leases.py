"""Leases a user holds at once, across every process: a Redis sorted set per user and purpose.

A lease is a member of the set scored by its expiry, so a lease whose holder died frees itself
once that time has passed. Replies streaming (`replies_key`, MAX_CONCURRENT_STREAMS) hold one until
the reply ends; open WebSockets and event streams (web.services.connections) renew theirs while open.
"""
from __future__ import annotations

import time

from redis import Redis

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
KEY_GRACE_S = 60  # the set outlives its newest lease by this much


def replies_key(user_id: int) -> str:
    """The user's replies streaming at once."""
    return f"parley:streams:{user_id}"


def acquire(redis: Redis, key: str, lease_id: str, *, limit: int, ttl_s: int) -> bool:
    """Take one of the `limit` leases of set `key` for `ttl_s` seconds; False when all are taken.
    Taking a lease already held keeps the one lease."""
    now = time.time()
    script = redis.register_script(_ACQUIRE)
    return bool(script(keys=[key], args=[now, limit, lease_id, now + ttl_s, ttl_s + KEY_GRACE_S]))


def renew(redis: Redis, key: str, lease_id: str, *, ttl_s: int) -> None:
    """Hold the lease `ttl_s` seconds from now (again, if it expired meanwhile: its holder is alive).
    Works on a pipeline, so a renewal can share a round trip."""
    redis.zadd(key, {lease_id: time.time() + ttl_s})
    redis.expire(key, ttl_s + KEY_GRACE_S)


def release(redis: Redis, key: str, lease_id: str) -> None:
    redis.zrem(key, lease_id)
