"""The threaded worker pool keeps all its threads: none is lost to a stale pooled connection."""
from __future__ import annotations

import time
import uuid

import pytest
from redis import BlockingConnectionPool, Redis

from tests.conftest import REAL_SERVICES
from workers import runtime
from workers.pool import ThreadPool


@pytest.mark.skipif(not REAL_SERVICES, reason="socket timeouts need a real Redis")
def test_threads_outlive_a_connection_made_before_the_pool():
    url = runtime.current().settings.redis_url
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=10, timeout=5))
    redis.ping()  # pooled with redis-py's default socket timeout (5 s), shorter than RQ's BLPOP
    pool = ThreadPool(redis, [f"pool-{uuid.uuid4().hex[:6]}"], 2)
    pool.renew_connections()
    pool.start()
    try:
        time.sleep(6)  # a BLPOP drawn on that connection would have timed out and ended its thread
        assert all(thread.is_alive() for thread in pool.threads)
    finally:
        pool.stop()
        for worker in pool.workers:
            worker.register_death()


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--threads", "-2"], ["--queues", ""], ["--queues", " , "]])
def test_worker_entry_refuses_arguments_that_would_run_nothing(argv, capsys):
    """`python -m workers` with no thread or no queue exited 0 at once (or logged RQ tracebacks): a process
    manager saw a clean exit and restarted it forever, and no reply was ever served."""
    from workers.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"argument {argv[0]}: " in capsys.readouterr().err


def test_worker_entry_refuses_a_misspelt_queue(capsys):
    """`--queues replys` served a queue nothing fills, forever and without a word."""
    from workers.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["--queues", "replies,replys"])
    assert exit_.value.code == 2
    assert "unknown queue 'replys': Parley's queues are replies, documents" in capsys.readouterr().err


def test_maintenance_runs_once_per_interval_not_before_every_job():
    """Our `clean_registries` never recorded that it ran, so RQ took every thread's maintenance as
    never done and ran it before every job it took (registries, worker registry and a database
    query for orphaned replies: about 10 ms of CPU a reply, twice)."""
    rt = runtime.current()
    q_name = f"pool-{uuid.uuid4().hex[:6]}"
    pool = ThreadPool(rt.redis, [q_name], 2, maintenance_interval_s=3600)
    maintainer, other = pool.workers
    assert maintainer.should_run_maintenance_tasks and not other.should_run_maintenance_tasks  # one thread's job
    maintainer.clean_registries()
    assert not maintainer.should_run_maintenance_tasks
