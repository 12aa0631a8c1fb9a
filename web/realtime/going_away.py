"""The WebSockets open in this process, so a shutting-down process can close them all.

On SIGTERM (`gunicorn.conf.py`) every socket's relay loop is woken and closes its socket
with 1001 "going away": clients reconnect, to another process, and resume from their
last event id instead of waiting out gunicorn's graceful timeout.
"""
from __future__ import annotations

import queue
import threading

GOING_AWAY = "going_away"
CLOSE_CODE = 1001


class OpenSockets:
    def __init__(self) -> None:
        self._inboxes: set[queue.Queue] = set()
        self._lock = threading.Lock()
        self.closing = False

    def add(self, inbox: queue.Queue) -> None:
        with self._lock:
            self._inboxes.add(inbox)
            if self.closing:
                inbox.put((GOING_AWAY, None))

    def discard(self, inbox: queue.Queue) -> None:
        with self._lock:
            self._inboxes.discard(inbox)

    def close_all(self) -> int:
        """Ask every open socket (and any opened from now on) to close; returns how many were open."""
        with self._lock:
            self.closing = True
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            inbox.put((GOING_AWAY, None))
        return len(inboxes)


_sockets: OpenSockets | None = None
_lock = threading.Lock()


def open_sockets() -> OpenSockets:
    """This process's registry, created on first use."""
    global _sockets
    with _lock:
        if _sockets is None:
            _sockets = OpenSockets()
        return _sockets
