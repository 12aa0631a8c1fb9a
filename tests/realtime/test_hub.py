"""The relay hub: a client's cursor past the end of a chat's stream never stalls live events."""
from __future__ import annotations

import queue
import random
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
