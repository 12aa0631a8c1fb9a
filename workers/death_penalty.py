"""Job time limits for worker threads that hold even when the first strike is lost.

RQ's `TimerDeathPenalty` raises the timeout in the job's thread once, asynchronously. Python
delivers it to whatever code that thread runs at that instant; when that is a finalizer
(`__del__`) or a gc callback, Python prints it as "Exception ignored" and the job runs on past
its limit (seen in this suite: a slow parse outlived its limit that way). This penalty strikes
again every `REPEAT_S` while the thread still runs that job (its `Job.perform` is on the stack).

The job's thread may fail to cancel the timer: a strike can land as it leaves the limited
block, before the cancel. So a repeat never relies on the cancel alone: once the job has
returned, the thread is not struck again, whatever it runs next (another job included).
"""
from __future__ import annotations

import sys
import threading

from rq.job import Job
from rq.timeouts import JobTimeoutException, TimerDeathPenalty

REPEAT_S = 2.0  # long enough for a job's own timeout handling (ending a reply FAILED) to finish
PERFORM = Job.perform.__code__


def runs_job(thread_id: int, job_id: str | None) -> bool:
    """Whether the thread is inside `Job.perform` of job `job_id` (of any job, for None) now."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code is PERFORM:
            job = frame.f_locals.get("self")
            return job_id is None or getattr(job, "id", None) == job_id
        frame = frame.f_back
    return False


class RepeatingTimerDeathPenalty(TimerDeathPenalty):
    repeat_s = REPEAT_S

    def __init__(self, timeout, exception=JobTimeoutException, **kwargs) -> None:
        super().__init__(timeout, exception, **kwargs)
        self._job_id = kwargs.get("job_id")  # RQ names the job it limits

    def setup_death_penalty(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._struck = False
        super().setup_death_penalty()

    def handle_death_penalty(self) -> None:
        """The first strike is RQ's (a callback's limit too); a repeat only while the job runs."""
        with self._lock:
            if self._cancelled or (self._struck and not runs_job(self._target_thread_id, self._job_id)):
                return
            super().handle_death_penalty()
            self._struck = True
            self._timer = threading.Timer(self.repeat_s, self.handle_death_penalty)
            self._timer.daemon = True
            self._timer.start()

    def cancel_death_penalty(self) -> None:
        if self._timeout <= 0:
            return
        while not self._cancelled:
            try:
                with self._lock:
                    self._cancelled = True
                    self._timer.cancel()
            except self._exception:
                continue  # a strike landed while this waited for the lock: cancel the timer it set
