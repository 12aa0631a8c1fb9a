"""The worker entry: `python -m workers [--queues replies] [--threads 100] [--fork] [--grace 20] [--any-queue]`.

Loads the app settings, configures database and Redis, then either runs reply jobs on a
pool of threads (IO-bound streaming) or runs a classic forking RQ worker (CPU-bound jobs
such as PDF parsing). Logs are JSON lines carrying the request id of the job's request.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import threading

from rq import Worker
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.serializers import JSONSerializer

from workers import queues, runtime, upstream
from workers.logs import JobLogContext, configure_json_logging
from workers.pool import MAINTENANCE_INTERVAL_S, ThreadPool
from workers.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--queues", type=queue_names, default=queues.REPLIES, help="comma-separated queue names")
    parser.add_argument("--threads", type=positive_int, default=None, help="concurrent jobs (thread pool mode)")
    parser.add_argument("--fork", action="store_true", help="forking worker, one job at a time")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    parser.add_argument("--any-queue", action="store_true",
                        help=f"also serve queues Parley never fills (a side queue); else only {', '.join(queues.ALL)}")
    parser.add_argument("--grace", type=float, default=20.0,
                        help="after SIGTERM, seconds running replies get to finish before they end FAILED")
    parser.add_argument("--maintenance-interval", type=int, default=MAINTENANCE_INTERVAL_S,
                        help="seconds between RQ's registry clean-ups (which fail the jobs of dead workers)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.queues if n not in queues.ALL]
    if unknown and not args.any_queue:  # a misspelt name would wait forever on a queue nothing fills
        parser.error(f"unknown queue {unknown[0]!r}: Parley's queues are {', '.join(queues.ALL)} "
                     "(--any-queue serves another on purpose)")

    configure_json_logging()
    settings = Settings()
    settings.check()
    if settings.embedded:
        parser.error("REDIS_URL is not set: the embedded mode runs its workers inside `flask --app web run`")
    rt = runtime.configure(settings)
    names = args.queues  # a list: argparse applies `type` to a string default too

    if args.fork:
        ForkWorker([queues.queue(n, rt.redis) for n in names], connection=rt.redis, serializer=JSONSerializer,
                   maintenance_interval=args.maintenance_interval).work(burst=args.burst)
        return

    for module in {m for n in names for m in queues.JOB_MODULES.get(n, ())}:
        importlib.import_module(module)  # RQ would import it on the first job (`openai` alone takes a second)
    if queues.REPLIES in names:
        upstream.warm_clients(settings)
    pool = ThreadPool(rt.redis, names, args.threads or settings.worker_threads, args.maintenance_interval)
    pool.renew_connections()
    pool.start(burst=args.burst)
    done = threading.Event()

    def request_stop(signum, _frame):
        logging.info("signal %s: finishing running jobs, then stopping", signum)
        pool.stop()
        done.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not done.is_set() and any(t.is_alive() for t in pool.threads):
        done.wait(1.0)
    pool.shutdown(args.grace)


def queue_names(value: str) -> list[str]:
    """`--queues`: at least one name (with none, every thread died at once on an empty BLPOP)."""
    names = [q.strip() for q in value.split(",") if q.strip()]
    if not names:
        raise argparse.ArgumentTypeError("at least one queue name is needed")
    return names


def positive_int(value: str) -> int:
    """`--threads`: with 0 or fewer the process exited 0 at once, serving nothing."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


class ForkWorker(JobLogContext, Worker):
    """RQ's forking worker; a job's log lines carry its request id."""

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage) -> None:
        """A work horse that died (killed past its time limit, out of memory, crashed in C code) never ran
        its job's failure callback; run it here, so a document being parsed ends FAILED, not PROCESSING."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        ran_s = (now() - job.started_at).total_seconds() if job.started_at else 0.0
        error = JobTimeoutException if job.timeout and ran_s > job.timeout else AbandonedJobError
        try:
            job.execute_failure_callback(self.death_penalty_class, error, error(), None)
        except Exception:  # logged by RQ; this worker goes on with the next job
            pass


if __name__ == "__main__":
    main()
