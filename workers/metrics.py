"""Reply and upstream metrics, recorded in Redis by the worker that streams the reply.

Worker processes come and go on any host; rather than each exposing a port that Prometheus
must discover, they add to a few Redis hashes and every web process serves the totals on
`/metrics` (see `web/observability`). The counters are cluster-wide and only grow; losing
Redis looks like a counter reset, which Prometheus handles.

This module also knows which replies this process is streaming right now, which a worker
shutting down needs (`in_flight`).
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

log = logging.getLogger(__name__)

REPLIES_KEY = "parley:metrics:replies"
UPSTREAM_KEY = "parley:metrics:upstream"
TTFT_KEY = "parley:metrics:ttft"
TPS_KEY = "parley:metrics:tokens_per_second"

OUTCOMES = {"DELIVERED": "completed", "FAILED": "failed", "CANCELLED": "cancelled"}
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
TPS_BUCKETS = (1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)

_running: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # run -> id of its thread
_first_token_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@dataclass
class HistogramData:
    buckets: tuple[float, ...]
    counts: dict[float, int] = field(default_factory=dict)  # per bucket, not cumulative; inf included
    total: float = 0.0
    count: int = 0

    def cumulative(self) -> list[tuple[str, int]]:
        """`(le, count)` pairs as Prometheus wants them, ending with `+Inf`."""
        running, out = 0, []
        for bound in (*self.buckets, float("inf")):
            running += self.counts.get(bound, 0)
            out.append(("+Inf" if bound == float("inf") else f"{bound:g}", running))
        return out


@dataclass
class Snapshot:
    replies: dict[str, int]
    upstream_calls: dict[tuple[str, str], int]
    ttft: HistogramData
    tokens_per_second: HistogramData


def reply_started(redis: Redis, run: Any) -> None:
    """A reply began streaming in this process."""
    with _lock:
        _running[run] = threading.get_ident()
    _safely(lambda: redis.hincrby(REPLIES_KEY, "started", 1))


def first_token(run: Any) -> None:
    """Called as chunks arrive; remembers when the first text of the reply came."""
    if run.content and run not in _first_token_at:
        with _lock:
            _first_token_at.setdefault(run, time.monotonic())


def forget(run: Any) -> float | None:
    """Stop tracking a run (its reply ended); its first token's time, if it had one."""
    with _lock:
        _running.pop(run, None)
        return _first_token_at.pop(run, None)


def reply_ended(redis: Redis, run: Any, status: str, tokens_out: int | None) -> None:
    """A reply was stored in its final `status`: count it, with its speed when it streamed."""
    now = time.monotonic()
    first = forget(run)
    with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(REPLIES_KEY, OUTCOMES.get(status, status.lower()), 1)
        if first is not None:
            _observe(pipe, TTFT_KEY, TTFT_BUCKETS, first - run.started_at)
            if tokens_out and tokens_out > 1 and now - first > 0:
                _observe(pipe, TPS_KEY, TPS_BUCKETS, tokens_out / (now - first))
        _safely(pipe.execute)


def upstream_call(redis: Redis, upstream: str, outcome: str) -> None:
    """One streamed call to an upstream ("ok" or "error")."""
    _safely(lambda: redis.hincrby(UPSTREAM_KEY, f"{upstream}|{outcome}", 1))


def in_flight(thread_ids: set[int] | None = None) -> list[Any]:
    """The unfinished replies this process streams (only those of `thread_ids`, if given)."""
    with _lock:
        return [run for run, thread in _running.items()
                if not run.finished and (thread_ids is None or thread in thread_ids)]


def snapshot(redis: Redis) -> Snapshot:
    """Everything recorded so far, for the web's `/metrics`."""
    with redis.pipeline(transaction=False) as pipe:
        for key in (REPLIES_KEY, UPSTREAM_KEY, TTFT_KEY, TPS_KEY):
            pipe.hgetall(key)
        replies, upstream, ttft, tps = pipe.execute()
    calls = {}
    for name, value in upstream.items():
        source, _, outcome = _text(name).partition("|")
        calls[(source, outcome)] = int(value)
    return Snapshot(
        replies={_text(k): int(v) for k, v in replies.items()},
        upstream_calls=calls,
        ttft=_histogram(TTFT_BUCKETS, ttft),
        tokens_per_second=_histogram(TPS_BUCKETS, tps),
    )


def _observe(pipe: Any, key: str, buckets: tuple[float, ...], value: float) -> None:
    bound = next((b for b in buckets if value <= b), float("inf"))
    pipe.hincrby(key, f"le:{bound:g}", 1)
    pipe.hincrbyfloat(key, "sum", value)
    pipe.hincrby(key, "count", 1)


def _histogram(buckets: tuple[float, ...], raw: dict[Any, Any]) -> HistogramData:
    data = HistogramData(buckets)
    for name, value in raw.items():
        name = _text(name)
        if name.startswith("le:"):
            data.counts[float(name[3:])] = int(value)
    data.total = float(raw.get(b"sum", raw.get("sum", 0)))
    data.count = int(raw.get(b"count", raw.get("count", 0)))
    return data


def _safely(action: Any) -> None:
    """Metrics never break a reply: a Redis hiccup here is logged and forgotten."""
    try:
        action()
    except Exception:
        log.warning("could not record reply metrics", exc_info=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
