"""Run many RQ jobs at once in one process: one `SimpleWorker` per thread.

A streamed reply spends seconds waiting on the upstream, so a reply worker process runs
N threads, each a complete RQ worker (registered, heartbeating, visible in rq-dashboard).
RQ's SIGALRM timeout only works in the main thread, so job timeouts use RQ's timer-based
death penalty; signals are handled once, by the process, not per thread.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from redis import Redis
from rq import SimpleWorker
from rq.worker import WorkerStatus
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty

from workers import queues

log = logging.getLogger(__name__)

# Registries only need cleaning by one thread of a process.
MAINTENANCE_INTERVAL_S = 60
NO_MAINTENANCE_S = 10 * 365 * 24 * 3600


class ThreadWorker(SimpleWorker):
    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        """Signals belong to the process (see `ThreadPool.stop`), not to each thread."""

    def subscribe(self) -> None:
        """RQ's stop-job command cannot stop a thread; replies stop through a Redis flag instead."""

    def unsubscribe(self) -> None:
        """Nothing was subscribed."""


class ThreadPool:
    """N reply workers in daemon threads, sharing one Redis connection pool."""

    def __init__(self, redis: Redis, queue_names: list[str], size: int) -> None:
        self.redis = redis
        prefix = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.workers = [
            ThreadWorker(
                [queues.queue(name, redis) for name in queue_names],
                connection=redis,
                name=f"{prefix}.{i}",
                serializer=JSONSerializer,
                maintenance_interval=MAINTENANCE_INTERVAL_S if i == 0 else NO_MAINTENANCE_S,
            )
            for i in range(size)
        ]
        self.threads: list[threading.Thread] = []

    def start(self, *, burst: bool = False) -> ThreadPool:
        for worker in self.workers:
            thread = threading.Thread(
                target=worker.work, kwargs={"burst": burst, "logging_level": "WARNING"},
                name=f"rq-{worker.name}", daemon=True,
            )
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        """Warm stop: each worker finishes its current job, then leaves."""
        for worker in self.workers:
            worker._stop_requested = True

    def wait_idle(self, timeout: float) -> None:
        """Wait until no thread runs a job (idle threads sit in a long BLPOP), then deregister."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(w.get_state() == WorkerStatus.BUSY for w in self.workers):
            time.sleep(0.2)
        for worker in self.workers:
            worker.register_death()
