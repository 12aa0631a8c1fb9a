"""One Redis reader per web process, fanning chat streams out to its connected clients.

Each client subscribes to a chat stream from a cursor. The hub's thread runs one
multi-key `XREAD BLOCK` over every stream a client of this process watches (plus a
private wake-up stream that interrupts the block when the key set changes) and puts new
entries on the subscribers' queues. A subscriber never gets an entry twice: entries at or
before its own cursor are dropped.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from typing import Any

from redis import Redis

from workers import events

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, Any]]  # (event id, event)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Subscription:
    """A client's view of one chat stream; entries arrive on `sink` as ("events", (sub, [Entry...]))."""

    def __init__(self, hub: Hub, key: str, cursor: str, sink: queue.Queue) -> None:
        self.hub = hub
        self.key = key
        self.cursor = cursor
        self.sink = sink

    def offer(self, entries: list[Entry]) -> None:
        mine = events.parse_id(self.cursor)
        fresh = [e for e in entries if events.parse_id(e[0]) > mine]
        if fresh:
            self.cursor = fresh[-1][0]
            self.sink.put(("events", (self, fresh)))

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Hub:
    def __init__(self, redis: Redis, *, block_ms: int = 2000, batch: int = 500) -> None:
        self._redis = redis
        self._block_ms = block_ms
        self._batch = batch
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, str] = {}
        self._wake_key = f"parley:hub:{uuid.uuid4().hex}:wake"
        self._wake_cursor = "0-0"
        self._thread: threading.Thread | None = None

    def subscribe(self, key: str, cursor: str, sink: queue.Queue) -> Subscription:
        """Deliver every entry of `key` after `cursor` to `sink`, now and as they arrive.

        The backlog (up to a whole stream) is read without the hub's lock, which the reading
        thread needs to hand out every other client's events; what the thread handed out for
        `key` meanwhile is read again, under the lock, so this client misses none of it.
        """
        backlog = self._read_range(key, cursor)
        if not backlog:
            cursor = self._not_past_the_end(key, cursor)
        sub = Subscription(self, key, cursor, sink)
        sub.offer(backlog)
        with self._lock:
            new_key = key not in self._cursors
            if new_key:
                self._cursors[key] = sub.cursor
            elif events.parse_id(self._cursors[key]) > events.parse_id(sub.cursor):
                sub.offer(self._read_range(key, sub.cursor, self._cursors[key]))
            self._subs.setdefault(key, set()).add(sub)
            self._ensure_thread()
        if new_key:
            self._wake()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.key)
            if subs is None:
                return
            subs.discard(sub)
            if not subs:
                del self._subs[sub.key]
                del self._cursors[sub.key]

    def subscriber_count(self) -> dict[str, int]:
        with self._lock:
            return {key: len(subs) for key, subs in self._subs.items()}

    def _not_past_the_end(self, key: str, cursor: str) -> str:
        """`cursor`, or the stream's last id when the cursor is past it ("0-0" for no stream).

        A client's cursor can be ahead of the stream: made up, or kept across a Redis reset
        that started the ids again. Read from there, it would miss every new entry; as the
        hub's cursor for the key (taken from its first subscriber), it would do that to every
        client of the chat in this process.
        """
        last = self._redis.xrevrange(key, count=1)
        end = _text(last[0][0]) if last else "0-0"
        return end if events.parse_id(cursor) > events.parse_id(end) else cursor

    def _read_range(self, key: str, cursor: str, last: str = "+") -> list[Entry]:
        """The entries of `key` after `cursor`, up to `last` included."""
        raw = self._redis.xrange(key, min=f"({cursor}", max=last)
        return [(_text(i), events.decode(f)) for i, f in raw]

    def _wake(self) -> None:
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=10, approximate=False)
                pipe.expire(self._wake_key, 3600)
                pipe.execute()
        except Exception:
            log.warning("hub wake-up failed", exc_info=True)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="relay-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self._read_once()
            except Exception:
                log.warning("relay hub read failed; retrying", exc_info=True)
                time.sleep(1.0)

    def _read_once(self) -> None:
        with self._lock:
            streams = {self._wake_key: self._wake_cursor, **self._cursors}
        reply = self._redis.xread(streams, count=self._batch, block=self._block_ms) or []
        pairs = reply.items() if isinstance(reply, dict) else reply  # RESP3 answers a map
        with self._lock:
            for raw_key, raw_entries in pairs:
                key = _text(raw_key)
                ids = [_text(i) for i, _ in raw_entries]
                if key == self._wake_key:
                    self._wake_cursor = ids[-1]
                    continue
                if key not in self._cursors:
                    continue  # everyone left while we were reading
                if events.parse_id(ids[-1]) > events.parse_id(self._cursors[key]):
                    self._cursors[key] = ids[-1]
                entries = [(i, events.decode(f)) for i, (_, f) in zip(ids, raw_entries)]
                for sub in self._subs[key]:
                    sub.offer(entries)
