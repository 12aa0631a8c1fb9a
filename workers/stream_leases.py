"""How many replies a user has streaming at once, across every process (a Redis lease set).

A lease is a member of the user's sorted set scored by its expiry, so a lease whose
worker died frees itself when the reply's time limit has passed.
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


def leases_key(user_id: int) -> str:
    return f"parley:streams:{user_id}"


def acquire(redis: Redis, user_id: int, lease_id: str, *, limit: int, ttl_s: int) -> bool:
    """Take one of the user's `limit` streaming slots for `ttl_s` seconds; False when all are taken."""
    now = time.time()
    script = redis.register_script(_ACQUIRE)
    return bool(script(keys=[leases_key(user_id)], args=[now, limit, lease_id, now + ttl_s, ttl_s + 60]))


def release(redis: Redis, user_id: int, lease_id: str) -> None:
    redis.zrem(leases_key(user_id), lease_id)

