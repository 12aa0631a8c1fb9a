"""Job time limits in worker threads hold when their first strike is lost in a finalizer."""
from __future__ import annotations

import threading
import time

from rq.timeouts import JobTimeoutException

from workers.death_penalty import RepeatingTimerDeathPenalty


class QuickRepeat(RepeatingTimerDeathPenalty):
    repeat_s = 0.3


def in_thread(job) -> dict:
    """Run `job(outcome)` in its own thread, as a pool worker runs jobs; its outcome."""
    outcome: dict = {}
    thread = threading.Thread(target=job, args=(outcome,))
    thread.start()
    thread.join(15)
    assert not thread.is_alive()
    return outcome


def test_a_limit_whose_first_strike_is_swallowed_strikes_again():
    def job(outcome: dict) -> None:
        started, lost = time.monotonic(), 0
        try:
            with QuickRepeat(0.5, JobTimeoutException):
                while time.monotonic() - started < 10:
                    try:
                        time.sleep(0.01)
                    except JobTimeoutException:
                        if lost:
                            raise
                        lost += 1  # what Python does when the strike lands in a __del__ or gc callback
        except JobTimeoutException:
            outcome["ended_after_s"] = time.monotonic() - started

    ended_after_s = in_thread(job)["ended_after_s"]
    assert 0.7 < ended_after_s < 2.5  # the limit (0.5 s), one lost strike, the next 0.3 s later


def test_a_job_that_left_its_limit_is_never_struck_again():
    def job(outcome: dict) -> None:
        with QuickRepeat(0.2, JobTimeoutException):
            try:
                time.sleep(5)
            except JobTimeoutException:
                outcome["struck"] = True  # the job's own handling, then it leaves the block
        try:
            time.sleep(1.2)  # what the thread does next (its next job): four repeat periods
            outcome["later"] = "untouched"
        except JobTimeoutException:
            outcome["later"] = "struck"

    assert in_thread(job) == {"struck": True, "later": "untouched"}


def test_no_limit_sets_no_timer():
    penalty = QuickRepeat(0, JobTimeoutException)
    with penalty:
        time.sleep(0.05)
    assert penalty._timer is None
