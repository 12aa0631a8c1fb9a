"""The per-process chunk publisher: chunks of many replies in one pipeline, in order, before each end."""
from __future__ import annotations

import threading
import time

from workers import events, runtime
from workers.reply_run import ReplyRun

CHAT_ID = 987_654  # a stream no test's chat uses


def make_run(name: str, window_s: float, persisted: list) -> ReplyRun:
    def persist(run: ReplyRun, status: str, fields: dict) -> dict:
        persisted.append((run.message_uuid, status, run.content))
        return {"type": events.REPLY_COMPLETE, "message_id": run.message_uuid}

    return ReplyRun(runtime.current().redis, CHAT_ID, "chat", name, maxlen=1000, ttl_s=60, persist=persist,
                    chunk_window_s=window_s)


def stream_events() -> list[dict]:
    return [events.decode(fields) for _id, fields in runtime.current().redis.xrange(events.chat_stream_key(CHAT_ID))]


def test_replies_share_the_publisher_and_keep_their_order(app):
    redis = runtime.current().redis
    redis.delete(events.chat_stream_key(CHAT_ID))
    persisted: list = []
    runs = [make_run(f"reply-{i}", 0.01, persisted) for i in range(20)]
    for token in range(30):
        for run in runs:
            assert run.add_chunk(f"t{token} ")
        time.sleep(0.002)
    for run in runs:
        assert run.finish("DELIVERED")
    seen = stream_events()
    expected = "".join(f"t{i} " for i in range(30))
    for run in runs:
        mine = [e for e in seen if e["message_id"] == run.message_uuid]
        assert mine[-1]["type"] == events.REPLY_COMPLETE, "the end came before a chunk"
        chunks = mine[:-1]
        assert "".join(c["chunk"] for c in chunks) == expected
        assert [c["offset"] for c in chunks] == [sum(len(c["chunk"]) for c in chunks[:i]) for i in range(len(chunks))]
        assert chunks[0]["chunk"] == "t0 "  # the first piece goes out at once
        assert len(chunks) < 30  # later pieces were coalesced
    assert sorted(persisted) == sorted((run.message_uuid, "DELIVERED", expected) for run in runs)


def test_finish_waits_for_a_chunk_being_written(app):
    runtime.current().redis.delete(events.chat_stream_key(CHAT_ID))
    persisted: list = []
    run = make_run("reply-slow", 60.0, persisted)
    run.add_chunk("a ")
    run.add_chunk("b ")
    taken = run.take_chunk()  # as the publisher does, before its pipeline is written
    assert taken["chunk"] == "b "
    run.add_chunk("c ")
    finisher = threading.Thread(target=run.finish, args=("DELIVERED",))
    finisher.start()
    finisher.join(0.3)
    assert finisher.is_alive() and not persisted, "finish did not wait for the chunk in flight"
    events.publish_chunks(run.redis, [(CHAT_ID, taken, 1000)])
    run.chunk_sent()
    finisher.join(5)
    assert [(e["type"], e.get("chunk")) for e in stream_events()] == [
        (events.REPLY_CHUNK, "a "), (events.REPLY_CHUNK, "b "), (events.REPLY_CHUNK, "c "), (events.REPLY_COMPLETE, None)]
    assert persisted == [("reply-slow", "DELIVERED", "a b c ")]
    assert not run.add_chunk("d ")


def test_a_reply_being_stored_does_not_hold_up_the_others(app):
    """`finish` stores the reply (a database commit) without the lock the publisher needs."""
    runtime.current().redis.delete(events.chat_stream_key(CHAT_ID))
    release, persisted = threading.Event(), []

    def slow_persist(run: ReplyRun, status: str, fields: dict) -> dict:
        release.wait(5)
        persisted.append(run.message_uuid)
        return {"type": events.REPLY_COMPLETE, "message_id": run.message_uuid}

    slow = ReplyRun(runtime.current().redis, CHAT_ID, "chat", "reply-slow", maxlen=1000, ttl_s=60,
                    persist=slow_persist, chunk_window_s=0.01)
    other = make_run("reply-other", 0.01, [])
    for run in (slow, other):
        run.add_chunk("a ")
        run.add_chunk("b ")  # queued: both have a publisher entry
    finisher = threading.Thread(target=slow.finish, args=("DELIVERED",))
    finisher.start()
    other.add_chunk("c ")
    try:
        assert wait_until(lambda: [e.get("chunk") for e in stream_events() if e["message_id"] == "reply-other"]
                          == ["a ", "b c "]), "the other reply's chunks waited for the slow one's commit"
    finally:
        release.set()
        finisher.join(5)
    assert persisted == ["reply-slow"]


def wait_until(predicate, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False
