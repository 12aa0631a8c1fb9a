"""The WebSockets and SSE streams open in this process, so a shutting-down process can end them all.

On SIGTERM (`gunicorn.conf.py`) every relay loop is woken: a socket closes with 1001 "going
away", an SSE stream ends (after a `retry:` hint) without its `[DONE]`. Clients reconnect,
to another process, and resume from their last event id instead of waiting out gunicorn's
graceful timeout.
"""
from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterator

GOING_AWAY = "going_away"
CLOSE_CODE = 1001
SSE_RETRY = "retry: 500\n\n"  # an SSE client's reconnection delay (ms), sent before a stream is ended


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


@contextmanager
def registered(inbox: queue.Queue) -> Iterator[None]:
    """While open, `inbox` (a relay loop's) gets `(GOING_AWAY, None)` when this process stops."""
    sockets = open_sockets()
    sockets.add(inbox)
    try:
        yield
    finally:
        sockets.discard(inbox)


def is_going_away(item: Any) -> bool:
    return isinstance(item, tuple) and item[:1] == (GOING_AWAY,)
