"""The circuit breaker's HALF_OPEN trial belongs to the caller that won it."""
from __future__ import annotations

import time
import uuid

from workers import runtime
from workers.breaker import HALF_OPEN, OPEN, CircuitBreaker


def half_open_breaker() -> tuple[str, CircuitBreaker]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(runtime.current().redis, name, threshold=1, timeout_s=30)
    breaker.record_failure()
    assert breaker.status().state == OPEN
    breaker.redis.hset(breaker.key, "opened_at", time.time() - 31)  # its timeout has passed
    return name, breaker


def test_only_the_trials_winner_releases_it(app):
    name, earlier_call = half_open_breaker()  # e.g. a reply let through while CLOSED, still running
    trial = CircuitBreaker(runtime.current().redis, name, threshold=1, timeout_s=30)
    assert trial.allow() and trial.status().state == HALF_OPEN
    earlier_call.release_trial()  # it ends (stopped, timed out) during the trial
    assert trial.trial_taken() and not CircuitBreaker(runtime.current().redis, name, threshold=1, timeout_s=30).allow()
    trial.release_trial()
    assert not trial.trial_taken()
    assert CircuitBreaker(runtime.current().redis, name, threshold=1, timeout_s=30).allow()  # the next may try
