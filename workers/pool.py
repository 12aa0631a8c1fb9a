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
from rq import SimpleWorker, worker_registration
from rq.registry import DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.worker import WorkerStatus
from rq.serializers import JSONSerializer
from rq.utils import now
from workers.death_penalty import RepeatingTimerDeathPenalty

from workers import queues
from workers.jobs import replies
from workers.logs import JobLogContext

log = logging.getLogger(__name__)

# Registries only need cleaning by one thread of a process.
MAINTENANCE_INTERVAL_S = 60
# After a shutdown has ended the replies still running, how long their threads get to unwind.
HAND_BACK_S = 3.0
NO_MAINTENANCE_S = 10 * 365 * 24 * 3600


class ThreadWorker(JobLogContext, SimpleWorker):
    death_penalty_class = RepeatingTimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        """Signals belong to the process (see `ThreadPool.stop`), not to each thread."""

    def subscribe(self) -> None:
        """RQ's stop-job command cannot stop a thread; replies stop through a Redis flag instead."""

    def unsubscribe(self) -> None:
        """Nothing was subscribed."""

    def clean_registries(self) -> None:
        """RQ's maintenance, with the failure callbacks of dead workers' jobs under the timer death
        penalty: RQ's own runs them under SIGALRM, which raises outside the main thread and
        kills this worker thread instead of ending the abandoned reply."""
        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue  # another worker is on it
            options = {"connection": queue.connection, "job_class": queue.job_class, "serializer": queue.serializer}
            FinishedJobRegistry(queue.name, **options).cleanup()
            StartedJobRegistry(queue.name, death_penalty_class=RepeatingTimerDeathPenalty, **options).cleanup(
                exception_handlers=self._exc_handlers)
            FailedJobRegistry(queue.name, **options).cleanup()
            DeferredJobRegistry(queue.name, **options).cleanup()
            worker_registration.clean_worker_registry(queue)
            queue.intermediate_queue.cleanup(self, queue)
            if queue.name == queues.REPLIES:
                self.end_orphaned_replies()
            queue.release_maintenance_lock()
        self.last_cleaned_at = now()  # as RQ's own does: else RQ runs it again before every job

    def end_orphaned_replies(self) -> None:
        """Replies that no job will end (see `end_orphaned_replies`); a failure waits for the next run."""
        try:
            replies.end_orphaned_replies()
        except Exception:
            log.warning("could not end orphaned replies", exc_info=True)


class ThreadPool:
    """N reply workers in daemon threads, sharing one Redis connection pool."""

    def __init__(self, redis: Redis, queue_names: list[str], size: int,
                 maintenance_interval_s: int = MAINTENANCE_INTERVAL_S) -> None:
        self.redis = redis
        prefix = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.workers = [
            ThreadWorker(
                [queues.queue(name, redis) for name in queue_names],
                connection=redis,
                name=f"{prefix}.{i}",
                serializer=JSONSerializer,
                maintenance_interval=maintenance_interval_s if i == 0 else NO_MAINTENANCE_S,
                # An idle RQ worker only looks at maintenance between two BLPOPs, each lasting
                # worker_ttl - 15 s (405 s by default): make the maintenance thread's last the interval.
                worker_ttl=maintenance_interval_s + 15 if i == 0 else None,
            )
            for i in range(size)
        ]
        for worker in self.workers[1:]:
            worker.last_cleaned_at = now()  # the first thread maintains; the others never do, even at start
        self.threads: list[threading.Thread] = []

    def renew_connections(self) -> None:
        """Drop the client's pooled connections; call it before anything else uses the client.

        Building a worker, RQ raises the pool's socket timeout above its BLPOP's, but only
        connections made afterwards get it. One made before (redis-py's default 5 s, or the
        maintenance worker's shorter timeout) ends the BLPOP of whichever thread later draws it
        with a TimeoutError, and RQ then stops that thread for good.
        """
        self.redis.connection_pool.disconnect()
        self.redis.connection_pool.reset()

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

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no thread runs a job (idle threads sit in a long BLPOP); True if none does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.busy():
            time.sleep(0.2)
        return not self.busy()

    def busy(self) -> list[ThreadWorker]:
        """The workers running a job now."""
        return [w for w in self.workers if w.get_state() == WorkerStatus.BUSY]

    def shutdown(self, grace_s: float) -> None:
        """Stop taking jobs, give running replies `grace_s` to finish, end the rest FAILED, deregister.

        A reply ended here keeps the text streamed so far, so none is left PROCESSING.
        """
        self.stop()
        if not self.wait_idle(grace_s):
            self.hand_back()
            self.wait_idle(HAND_BACK_S)
        for worker in self.workers:
            worker.register_death()

    def hand_back(self) -> None:
        """End this pool's running replies FAILED (`worker_lost`), keeping their streamed text."""
        from workers import metrics
        from workers.jobs.replies import end_reply_without_worker

        running = metrics.in_flight({t.ident for t in self.threads if t.ident is not None})
        log.warning("shutting down: ending %d running replies as FAILED", len(running))
        for run in running:
            run.finish("FAILED", error_code="worker_lost")  # also closes its upstream stream
        for worker in self.busy():  # replies not yet streaming (building their prompt)
            job_id = worker.get_current_job_id()
            job = worker.get_current_job() if job_id and job_id.startswith(queues.reply_job_id("")) else None
            if job is not None:
                end_reply_without_worker(job.args[0], "FAILED", error_code="worker_lost")
