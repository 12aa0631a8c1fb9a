"""A reply being streamed by this process, and the watcher that stops it from anywhere.

A reply's text reaches its chat's stream in chunks: the first piece at once, then at most
one chunk per `chunk_window_s` holding every piece that arrived meanwhile (each stream
entry costs a Redis write, a relay wake-up and a frame per client, so a busy worker that
reads tokens in bursts sends them together). After the first piece, the process's
publisher thread writes the chunks, those of every reply due together in one pipeline.

A stop request is a Redis key; one watcher thread per worker process checks the keys of
the replies it runs (one MGET every 200 ms) and ends a stopped reply at once, even while
its thread is blocked waiting for the next upstream token.
"""
from __future__ import annotations

import heapq
import itertools
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

    def __init__(self, redis: Redis, chat_id: int, chat_uuid: str, message_uuid: str, *, maxlen: int, ttl_s: int,
                 persist: Callable[[ReplyRun, str, dict[str, Any]], dict[str, Any] | None],
                 chunk_window_s: float = 0.0) -> None:
        self.redis = redis
        self.chat_id = chat_id
        self.chat_uuid = chat_uuid
        self.message_uuid = message_uuid
        self.requested_by: int | None = None  # whose streaming slot the reply holds
        self.only_for: str | None = None  # a reply not kept: its asker's uuid, the only one shown it
        self.content = ""
        self.started_at = time.monotonic()
        self.finished = False
        self.upstream_response: Any = None
        self.prompt_tokens: int | None = None
        self.maxlen = maxlen
        self._ttl_s = ttl_s
        self._persist = persist
        self._lock = threading.Lock()
        self._sent = threading.Condition(self._lock)
        self._window_s = chunk_window_s
        self._pending: list[str] = []  # pieces not yet published
        self._next_chunk_at: float | None = None  # None until the first piece is out
        self._queued = False  # waiting for the publisher
        self._in_flight = 0  # chunks taken by the publisher, not yet written

    def publish(self, event: dict[str, Any]) -> str:
        return events.publish(self.redis, self.chat_id, self.addressed(event), maxlen=self.maxlen, ttl_s=self._ttl_s)

    def addressed(self, event: dict[str, Any]) -> dict[str, Any]:
        return {**event, events.ONLY_FOR: self.only_for} if self.only_for else event

    def add_chunk(self, text: str) -> bool:
        """Add one piece of the reply (the first published now, the rest by the publisher); False once finished."""
        with self._lock:
            if self.finished:
                return False
            self.content += text
            self._pending.append(text)
            if self._next_chunk_at is None:
                self.publish(self._take_pending())
            elif not self._queued:
                self._queued = True
                chunk_publisher().schedule(self._next_chunk_at, self)
            return True

    def take_chunk(self) -> dict[str, Any] | None:
        """The publisher's call: the chunk event of the waiting pieces, if any; `chunk_sent` must follow."""
        with self._lock:
            self._queued = False
            if self.finished or not self._pending:
                return None
            self._in_flight += 1
            return self._take_pending()

    def chunk_sent(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._sent.notify_all()

    def _take_pending(self) -> dict[str, Any]:
        pieces, self._pending = self._pending, []
        text = "".join(pieces)
        event = {"type": events.REPLY_CHUNK, "message_id": self.message_uuid, "chat_id": self.chat_uuid,
                 "chunk": text, "offset": len(self.content) - len(text)}
        if len(pieces) > 1:
            event["tokens"] = pieces  # the SSE surfaces send one `data:` per token
        self._next_chunk_at = time.monotonic() + self._window_s
        return self.addressed(event)

    def finish(self, status: str, **fields: Any) -> bool:
        """Store the final state, then publish the closing event; only the first call acts.

        Once `finished` is set no piece is added or taken, so the rest runs without the lock
        (storing the reply takes a database commit, and the publisher must not wait on it).
        """
        with self._lock:
            if self.finished:
                return False
            self.finished = True
            while self._in_flight:  # a chunk the publisher is writing goes first
                self._sent.wait()
            last_chunk = self._take_pending() if self._pending else None
        if last_chunk is not None:  # clients get every piece of the stored content before its end
            try:
                self.publish(last_chunk)
            except Exception:
                log.warning("could not publish the last chunk of reply %s", self.message_uuid, exc_info=True)
        fields.setdefault("processing_time_ms", int((time.monotonic() - self.started_at) * 1000))
        try:
            final_event = self._persist(self, status, fields)
            if final_event is not None:
                self.publish(final_event)
        finally:
            self.close_upstream()  # its connection goes back to the pool, or is closed
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
                thread = threading.Thread(target=self._loop, name="stop-watcher", daemon=True)
                thread.start()
                self._thread = thread

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
                    try:
                        run.finish("CANCELLED", finish_reason="cancelled")
                    except Exception:  # the watcher must go on stopping the other replies
                        log.warning("could not end stopped reply %s", run.message_uuid, exc_info=True)


class ChunkPublisher:
    """One thread per process writing the chunks of all its replies whose window has ended.

    Every chunk due at the same moment goes in one Redis pipeline: with a hundred replies
    streaming in a process, one round trip carries dozens of chunks instead of one each.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, ReplyRun]] = []
        self._order = itertools.count()  # ties never compare runs
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, at: float, run: ReplyRun) -> None:
        with self._wake:
            heapq.heappush(self._due, (at, next(self._order), run))
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="chunk-publisher", daemon=True)
                thread.start()
                self._thread = thread
            if self._due[0][2] is run:
                self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                now = time.monotonic()
                runs = []
                while self._due and self._due[0][0] <= now:
                    runs.append(heapq.heappop(self._due)[2])
            self._write(runs)

    @staticmethod
    def _write(runs: list[ReplyRun]) -> None:
        """Write the runs' waiting chunks; never raises (the thread serves every reply of the process)."""
        taken: list[tuple[ReplyRun, dict[str, Any]]] = []
        try:
            for run in runs:
                event = run.take_chunk()
                if event is not None:
                    taken.append((run, event))
            by_client: dict[int, list[tuple[ReplyRun, dict[str, Any]]]] = {}
            for run, event in taken:
                by_client.setdefault(id(run.redis), []).append((run, event))
            for chunks in by_client.values():
                failures = events.publish_chunks(chunks[0][0].redis,
                                                 [(run.chat_id, event, run.maxlen) for run, event in chunks])
                for (run, _), failure in zip(chunks, failures):
                    if failure is not None:
                        log.warning("could not publish a chunk of reply %s: %s", run.message_uuid, failure)
        except Exception:
            log.warning("could not publish the chunks of %d replies", len(taken), exc_info=True)
        finally:
            for run, _ in taken:
                run.chunk_sent()


_publisher = ChunkPublisher()  # its thread starts with the first chunk it is given


def chunk_publisher() -> ChunkPublisher:
    return _publisher
