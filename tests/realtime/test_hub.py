"""The relay hub: a client's cursor past the end of a chat's stream never stalls live events."""
from __future__ import annotations

import queue
import random
import threading
import time

from web.realtime.hub import Hub
from workers import events, runtime

FUTURE = "99999999999999-0"


def received(sink: queue.Queue, timeout: float = 3.0) -> list[dict]:
    """The events that reached `sink` within `timeout` (stops at the first quiet half second after one)."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, (_, entries) = sink.get(timeout=0.5)
        except queue.Empty:
            if found:
                break
            continue
        found.extend(event for _, event in entries)
    return found


def test_a_cursor_past_the_end_stalls_no_one(app):
    redis = runtime.current().redis
    chat_id = random.randrange(10**9, 2 * 10**9)
    key = events.chat_stream_key(chat_id)
    hub = Hub(redis, block_ms=100)
    events.publish(redis, chat_id, {"type": "before"})
    ahead, current = queue.Queue(), queue.Queue()
    first = hub.subscribe(key, FUTURE, ahead)  # a made-up id, or one kept across a Redis reset
    second = hub.subscribe(key, events.last_event_id(redis, chat_id), current)
    try:
        events.publish(redis, chat_id, {"type": "after"})
        assert [e["type"] for e in received(current)] == ["after"]
        assert [e["type"] for e in received(ahead)] == ["after"]  # from the stream's end, not from nowhere
    finally:
        first.close()
        second.close()
        redis.delete(key)


def test_a_cursor_on_a_stream_that_does_not_exist_yet_gets_its_first_entries(app):
    redis = runtime.current().redis
    chat_id = random.randrange(10**9, 2 * 10**9)
    key = events.chat_stream_key(chat_id)
    hub = Hub(redis, block_ms=100)
    sink: queue.Queue = queue.Queue()
    sub = hub.subscribe(key, "5-0", sink)
    try:
        events.publish(redis, chat_id, {"type": "first"})
        assert [e["type"] for e in received(sink)] == ["first"]
    finally:
        sub.close()
        redis.delete(key)


class PausedBacklog:
    """A Redis client whose XRANGE of one key (a resuming client's backlog read), once `armed`, waits
    for `release` after reading: the time a long backlog takes, made as long as the test needs."""

    def __init__(self, redis, key: str) -> None:
        self._redis, self._key, self.armed = redis, key, False
        self.reading, self.release = threading.Event(), threading.Event()

    def xrange(self, name, *args, **kwargs):
        entries = self._redis.xrange(name, *args, **kwargs)
        if name == self._key and self.armed:
            self.armed = False
            self.reading.set()
            assert self.release.wait(10)
        return entries

    def __getattr__(self, name):
        return getattr(self._redis, name)


def test_a_backlog_read_stalls_no_other_subscriber_and_misses_nothing(app):
    """Reading a resuming client's backlog (up to REPLY_STREAM_MAXLEN entries) must not hold the hub:
    the other sockets of the process keep getting their events meanwhile, and what reaches the stream
    during the read still reaches the resuming client, once."""
    redis = runtime.current().redis
    busy, other = random.randrange(10**9, 2 * 10**9), random.randrange(2 * 10**9, 3 * 10**9)
    busy_key, other_key = events.chat_stream_key(busy), events.chat_stream_key(other)
    paused = PausedBacklog(redis, busy_key)
    hub = Hub(paused, block_ms=100)
    events.publish(redis, busy, {"type": "old"})
    watching, resuming, elsewhere = queue.Queue(), queue.Queue(), queue.Queue()
    watcher = hub.subscribe(busy_key, events.last_event_id(redis, busy), watching)
    bystander = hub.subscribe(other_key, "0-0", elsewhere)
    subs = [watcher, bystander]
    paused.armed = True
    resumer = threading.Thread(target=lambda: subs.append(hub.subscribe(busy_key, "0-0", resuming)))
    resumer.start()
    try:
        assert paused.reading.wait(5)
        events.publish(redis, other, {"type": "elsewhere"})
        events.publish(redis, busy, {"type": "during"})
        assert [e["type"] for e in received(elsewhere)] == ["elsewhere"]
        assert [e["type"] for e in received(watching)] == ["during"]
        paused.release.set()
        resumer.join(5)
        assert [e["type"] for e in received(resuming)] == ["old", "during"]
    finally:
        paused.release.set()
        resumer.join(5)
        for sub in subs:
            sub.close()
        redis.delete(busy_key, other_key)
