"""Cluster-wide metrics read from Redis when `/metrics` is scraped.

Queue depths, RQ workers, circuit-breaker states and the replies counted by workers
(`workers.metrics`) are the same whichever web process answers, so they are computed at
scrape time instead of being kept in any process.
"""
from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis import Redis
from rq import Queue, Worker
from rq.registry import DeferredJobRegistry, FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from workers import metrics as reply_metrics
from workers import queues, upstream
from workers.breaker import CLOSED, HALF_OPEN, OPEN
from workers.settings import Settings

REGISTRIES = {"started": StartedJobRegistry, "failed": FailedJobRegistry,
              "scheduled": ScheduledJobRegistry, "deferred": DeferredJobRegistry}
REPLY_OUTCOMES = ("started", "completed", "failed", "cancelled")


class ClusterCollector:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        yield from self.queue_metrics()
        yield self.breaker_states()
        yield from self.reply_metrics()

    def queue_metrics(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("parley_queue_jobs", "RQ jobs by queue and state (queued = waiting)",
                                 labels=["queue", "state"])
        workers = GaugeMetricFamily("parley_rq_workers", "RQ workers listening on a queue (one per worker thread)",
                                    labels=["queue"])
        for name in queues.ALL:
            q = Queue(name, connection=self.redis)
            jobs.add_metric([name, "queued"], q.count)
            for state, registry in REGISTRIES.items():
                jobs.add_metric([name, state], registry(name, connection=self.redis).get_job_count(cleanup=False))
            workers.add_metric([name], Worker.count(connection=self.redis, queue=q))
        yield jobs
        yield workers

    def breaker_states(self) -> Metric:
        states = GaugeMetricFamily("parley_circuit_breaker_state", "1 for the state each upstream's circuit is in",
                                   labels=["upstream", "state"])
        for name in (upstream.PRIMARY, upstream.FALLBACK):
            current = upstream.breaker(self.redis, self.settings, name).status().state
            for state in (CLOSED, OPEN, HALF_OPEN):
                states.add_metric([name, state], 1.0 if state == current else 0.0)
        return states

    def reply_metrics(self) -> Iterator[Metric]:
        snap = reply_metrics.snapshot(self.redis)
        replies = CounterMetricFamily("parley_replies", "AI replies started and ended, by outcome",
                                      labels=["outcome"])
        for outcome in sorted(set(REPLY_OUTCOMES) | set(snap.replies)):
            replies.add_metric([outcome], snap.replies.get(outcome, 0))
        yield replies
        calls = CounterMetricFamily("parley_upstream_calls", "Streamed upstream calls by upstream and outcome",
                                    labels=["upstream", "outcome"])
        for (source, outcome), count in sorted(snap.upstream_calls.items()):
            calls.add_metric([source, outcome], count)
        yield calls
        for name, doc, data in (
            ("parley_reply_time_to_first_token_seconds", "From the worker taking a reply to its first text",
             snap.ttft),
            ("parley_reply_tokens_per_second", "Output tokens per second after the first token",
             snap.tokens_per_second),
        ):
            yield HistogramMetricFamily(name, doc, buckets=data.cumulative(), sum_value=data.total)
