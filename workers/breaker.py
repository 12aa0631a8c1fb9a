"""A circuit breaker per upstream, its state in Redis so every process shares it.

CLOSED → OPEN after `threshold` consecutive failures; OPEN → HALF_OPEN once `timeout_s`
has passed, letting exactly one trial call through (a Redis lock); the trial's success
closes the circuit, its failure opens it again, and a trial that ends any other way must
release the lock (`record_error` in workers.upstream does the three).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"

# Atomic failure: count it, remember when, open the circuit at the threshold or on a failed trial.
_RECORD_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_failure', ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if failures >= tonumber(ARGV[2]) or state == 'HALF_OPEN' or state == 'OPEN' then
  redis.call('HSET', KEYS[1], 'state', 'OPEN', 'opened_at', ARGV[1])
  redis.call('DEL', KEYS[2])
end
return failures
"""

# Release the trial lock only if this caller holds it.
_RELEASE_OWN_TRIAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class BreakerStatus:
    state: str
    failure_count: int
    failure_threshold: int
    timeout_seconds: int
    last_failure_time: float | None

    def as_dict(self, iso: Any) -> dict[str, Any]:
        return {
            "state": self.state, "failure_count": self.failure_count,
            "failure_threshold": self.failure_threshold, "timeout_seconds": self.timeout_seconds,
            "last_failure_time": iso(self.last_failure_time),
        }


class CircuitBreaker:
    def __init__(self, redis: Redis, name: str, *, threshold: int = 5, timeout_s: int = 60) -> None:
        self.redis = redis
        self.name = name
        self.threshold = threshold
        self.timeout_s = timeout_s
        self.key = f"parley:breaker:{name}"
        self.trial_key = f"{self.key}:trial"
        self._record_failure = redis.register_script(_RECORD_FAILURE)
        self._release_own_trial = redis.register_script(_RELEASE_OWN_TRIAL)
        self._trial_token: str | None = None  # set when this caller won the HALF_OPEN trial

    def status(self) -> BreakerStatus:
        raw = {_text(k): _text(v) for k, v in self.redis.hgetall(self.key).items()}
        state = raw.get("state", CLOSED)
        if state == OPEN and time.time() - float(raw.get("opened_at", 0)) >= self.timeout_s:
            state = HALF_OPEN
        last = raw.get("last_failure")
        return BreakerStatus(state, int(raw.get("failures", 0)), self.threshold, self.timeout_s,
                             float(last) if last else None)

    def allow(self) -> bool:
        """May a call go through now? In HALF_OPEN only the one caller that wins the trial lock."""
        state = self.status().state
        if state == CLOSED:
            return True
        if state == OPEN:
            return False
        token = uuid.uuid4().hex
        if self.redis.set(self.trial_key, token, nx=True, ex=max(self.timeout_s, 1)):
            self.redis.hset(self.key, "state", HALF_OPEN)
            self._trial_token = token
            return True
        return False

    def record_success(self) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, mapping={"state": CLOSED, "failures": 0})
            pipe.delete(self.trial_key)
            pipe.execute()

    def release_trial(self) -> None:
        """The trial ended saying nothing about the service (stopped, a local error, the job's
        time limit): the next call may try. Without this the lock would refuse every call until it
        expires. Only the caller that won the trial releases it: a call let through while CLOSED
        that ends during another's trial leaves that trial alone."""
        if self._trial_token is not None:
            self._release_own_trial(keys=[self.trial_key], args=[self._trial_token])
            self._trial_token = None

    def trial_taken(self) -> bool:
        """Is a HALF_OPEN trial under way, so that `allow()` refuses everyone else?"""
        return bool(self.redis.exists(self.trial_key))

    def record_failure(self) -> None:
        self._record_failure(keys=[self.key, self.trial_key], args=[time.time(), self.threshold])

    def reset(self) -> None:
        self.redis.delete(self.key, self.trial_key)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
