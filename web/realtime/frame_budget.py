"""How many frames a WebSocket client may send: a budget a second, past which frames are dropped.

Every client frame makes the server work (a `resume` re-reads up to a whole stream), so one
client could otherwise keep a web process busy for everyone.
"""
from __future__ import annotations

import time

RESUME_COST = 10  # a resume that re-reads the stream replays up to REPLY_STREAM_MAXLEN events
ABUSE_BUDGETS = 3  # spending this many budgets within a second closes the socket
CLOSE_CODE = 4429
# A client frame is JSON of a few fields; a larger one closes the socket 1009 as it comes in,
# instead of being read (or inflated) whole into memory (flask-sock's SOCK_SERVER_OPTIONS;
# simple-websocket counts a text frame's characters, a binary frame's bytes).
MAX_FRAME_BYTES = 64 * 1024
ALLOWED, REFUSED, DROPPED, ABUSE = "allowed", "refused", "dropped", "abuse"


class FrameBudget:
    """`per_s` a second, counted from a second's first frame."""

    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self.second_started = float("-inf")
        self.spent = 0

    def spend(self, cost: int, at: float | None = None) -> str:
        """Count a frame of `cost` (1, or RESUME_COST for a resume the socket serves) that came
        `at` (`time.monotonic()`; default now): a frame that waited is counted when it was sent.

        ALLOWED; REFUSED for the first frame past the budget (answer it), DROPPED for the next
        ones, ABUSE once the client sent ABUSE_BUDGETS budgets' worth in the second (close)."""
        now = time.monotonic() if at is None else at
        if now - self.second_started >= 1.0:
            self.second_started, self.spent = now, 0
        before = self.spent
        self.spent += cost
        if self.spent <= self.per_s:
            return ALLOWED
        if self.spent > ABUSE_BUDGETS * self.per_s:
            return ABUSE
        return REFUSED if before <= self.per_s else DROPPED

    @property
    def most_waiting(self) -> int:
        """Client frames that may wait for the socket's loop (more are dropped): as many as would
        close the socket within a second."""
        return ABUSE_BUDGETS * self.per_s

    def dropped_notice(self, count: int) -> dict[str, str]:
        """The `error` frame's fields for `count` frames dropped because too many were waiting."""
        return {"error_code": "frames_dropped",
                "error": f"{count} frame(s) dropped: at most {self.most_waiting} wait while the server is busy "
                         "sending to this socket; send them again"}

    def refusal(self) -> dict[str, str]:
        """The `error` frame's fields for the first frame past the budget."""
        return {"error_code": "rate_limited",
                "error": f"Too many frames: at most {self.per_s} a second (a resume re-reading the stream "
                         f"counts as {RESUME_COST}); the others sent this second are dropped, and "
                         f"{ABUSE_BUDGETS * self.per_s} close the socket ({CLOSE_CODE})"}
