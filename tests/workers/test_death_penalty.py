"""Job time limits in worker threads hold when their first strike is lost in a finalizer, and
never strike a thread once its job has returned."""
from __future__ import annotations

import threading
import time

from fakeredis import FakeRedis
from rq.job import Job
from rq.timeouts import JobTimeoutException

from workers.death_penalty import RepeatingTimerDeathPenalty


class QuickRepeat(RepeatingTimerDeathPenalty):
    repeat_s = 0.3


def in_thread(target) -> dict:
    """Run `target(outcome)` in its own thread, as a pool worker runs jobs; its outcome."""
    outcome: dict = {}
    thread = threading.Thread(target=target, args=(outcome,))
    thread.start()
    thread.join(15)
    assert not thread.is_alive()
    return outcome


def new_job(function, *args) -> Job:
    return Job.create(function, args=args, connection=FakeRedis())


def loses_one_strike(outcome: dict) -> None:
    started, lost = time.monotonic(), 0
    while time.monotonic() - started < 10:
        try:
            time.sleep(0.01)
        except JobTimeoutException:
            if lost:
                raise
            lost += 1  # what Python does when the strike lands in a __del__ or gc callback


def handles_its_timeout(outcome: dict) -> None:
    try:
        time.sleep(5)
    except JobTimeoutException:
        outcome["struck"] = True  # the job's own handling, then it returns


def quick(outcome: dict) -> None:
    outcome["ran"] = True


def sleeps_untouched(outcome: dict) -> None:
    try:
        time.sleep(1.2)  # four repeat periods
        outcome["later"] = "untouched"
    except JobTimeoutException:
        outcome["later"] = "struck"


def test_a_limit_whose_first_strike_is_swallowed_strikes_again():
    def worker(outcome: dict) -> None:
        job, started = new_job(loses_one_strike, outcome), time.monotonic()
        try:
            with QuickRepeat(0.5, JobTimeoutException, job_id=job.id):
                job.perform()
        except JobTimeoutException:
            outcome["ended_after_s"] = time.monotonic() - started

    ended_after_s = in_thread(worker)["ended_after_s"]
    assert 0.7 < ended_after_s < 2.5  # the limit (0.5 s), one lost strike, the next 0.3 s later


def test_a_job_that_left_its_limit_is_never_struck_again():
    def worker(outcome: dict) -> None:
        job = new_job(handles_its_timeout, outcome)
        with QuickRepeat(0.2, JobTimeoutException, job_id=job.id):
            job.perform()
        sleeps_untouched(outcome)  # what the thread does next

    assert in_thread(worker) == {"struck": True, "later": "untouched"}


def test_a_lost_cancel_does_not_strike_the_threads_next_job():
    """A strike can land as the job leaves its block, before the cancel: simulated by never
    cancelling. The first strike still comes (as with RQ's own penalty); no series follows,
    neither outside a job nor in the thread's next job."""
    def worker(outcome: dict) -> None:
        job = new_job(quick, outcome)
        penalty = QuickRepeat(0.2, JobTimeoutException, job_id=job.id)
        penalty.setup_death_penalty()
        job.perform()
        strikes = 0
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:  # the next four repeat periods, outside any job
            try:
                time.sleep(0.01)
            except JobTimeoutException:
                strikes += 1
        outcome["strikes"] = strikes
        following = new_job(sleeps_untouched, outcome)
        following.perform()
        penalty.cancel_death_penalty()

    assert in_thread(worker) == {"ran": True, "strikes": 1, "later": "untouched"}


def test_no_limit_sets_no_timer():
    penalty = QuickRepeat(0, JobTimeoutException)
    with penalty:
        time.sleep(0.05)
    assert penalty._timer is None
