"""A reply being streamed by this process, and the watcher that stops it from anywhere.

A stop request is a Redis key; one watcher thread per worker process checks the keys of
the replies it runs (one MGET every 200 ms) and ends a stopped reply at once, even while
its thread is blocked waiting for the next upstream token.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from redis import Redis

from workers import events

log = logging.getLogger(__name__)

POLL_S = 0.2


class ReplyRun:
    """Streams one reply's events; `finish` runs once, from whichever thread gets there first."""

    def __init__(self, redis: Redis, chat_id: int, message_uuid: str, *, maxlen: int, ttl_s: int,
                 persist: Callable[[ReplyRun, str, dict[str, Any]], dict[str, Any] | None]) -> None:
        self.redis = redis
        self.chat_id = chat_id
        self.message_uuid = message_uuid
        self.content = ""
        self.started_at = time.monotonic()
        self.finished = False
        self.upstream_response: Any = None
        self.prompt_tokens: int | None = None
        self._maxlen = maxlen
        self._ttl_s = ttl_s
        self._persist = persist
        self._lock = threading.Lock()

    def publish(self, event: dict[str, Any]) -> str:
        return events.publish(self.redis, self.chat_id, event, maxlen=self._maxlen, ttl_s=self._ttl_s)

    def add_chunk(self, chat_uuid: str, text: str) -> bool:
        """Publish one piece of the reply; False once the reply has been finished."""
        with self._lock:
            if self.finished:
                return False
            offset = len(self.content)
            self.content += text
            self.publish({
                "type": events.REPLY_CHUNK, "message_id": self.message_uuid, "chat_id": chat_uuid,
                "chunk": text, "offset": offset,
            })
            return True

    def finish(self, status: str, **fields: Any) -> bool:
        """Store the final state, then publish the closing event; only the first call acts."""
        with self._lock:
            if self.finished:
                return False
            self.finished = True
            fields.setdefault("processing_time_ms", int((time.monotonic() - self.started_at) * 1000))
            final_event = self._persist(self, status, fields)
            if final_event is not None:
                self.publish(final_event)
        self.close_upstream()
        return True

    def close_upstream(self) -> None:
        response = self.upstream_response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing a half-read stream may fail; the reply is over anyway
                log.debug("closing upstream stream failed", exc_info=True)


class StopWatcher:
    """Ends this process's replies whose stop key appears in Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._runs: dict[str, ReplyRun] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, run: ReplyRun) -> None:
        with self._lock:
            self._runs[run.message_uuid] = run
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="stop-watcher", daemon=True)
                self._thread.start()

    def forget(self, run: ReplyRun) -> None:
        with self._lock:
            self._runs.pop(run.message_uuid, None)

    def _loop(self) -> None:
        while True:
            time.sleep(POLL_S)
            with self._lock:
                runs = list(self._runs.values())
            if not runs:
                continue
            try:
                flags = self._redis.mget([events.stop_key(r.message_uuid) for r in runs])
            except Exception:
                log.warning("stop watcher could not read stop flags", exc_info=True)
                continue
            for run, flag in zip(runs, flags):
                if flag is not None:
                    run.finish("CANCELLED", finish_reason="cancelled")
