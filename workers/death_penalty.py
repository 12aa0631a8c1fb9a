"""Job time limits for worker threads that hold even when the first strike is lost.

RQ's `TimerDeathPenalty` raises the timeout in the job's thread once, asynchronously. Python
delivers it to whatever code that thread runs at that instant; when that is a finalizer
(`__del__`) or a gc callback, Python prints it as "Exception ignored" and the job runs on past
its limit (seen in this suite: a slow parse outlived its limit that way). This penalty strikes
again every `REPEAT_S` until the job leaves its time-limited block.
"""
from __future__ import annotations

import threading

from rq.timeouts import TimerDeathPenalty

REPEAT_S = 2.0  # long enough for a job's own timeout handling (ending a reply FAILED) to finish


class RepeatingTimerDeathPenalty(TimerDeathPenalty):
    repeat_s = REPEAT_S

    def setup_death_penalty(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        super().setup_death_penalty()

    def handle_death_penalty(self) -> None:
        with self._lock:  # never strike a thread that has left the block (it may run another job)
            if self._cancelled:
                return
            super().handle_death_penalty()
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
