"""A worker told to stop: running replies finish within the grace period or end FAILED with
their partial text, never left PROCESSING; `python -m workers` does it on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from rq import Worker
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from models import Chat, Message
from tests.conftest import REAL_SERVICES, wait_for
from workers import events, queues, runtime
from workers.logs import bound
from workers.pool import ThreadPool, ThreadWorker

ROOT = Path(__file__).resolve().parents[2]
FULL_TEXT = "".join(f"t{i} " for i in range(400))


def pending_reply(make_chat, account) -> tuple[int, str, int]:
    """A chat with a user message and its AI reply stored PROCESSING, not enqueued yet."""
    chat = make_chat(account)
    with runtime.session() as db:
        chat_id = db.scalar(select(Chat.id).where(Chat.uuid == chat["id"]))
        db.add(Message(chat_id=chat_id, sender_id=account["user_id"], role="user", content="Tell me a story"))
        reply = Message(chat_id=chat_id, role="assistant", status="PROCESSING", content="", model="gpt-4")
        db.add(reply)
        db.commit()
        return chat_id, reply.uuid, reply.id


def streamed(chat_id: int, reply_uuid: str) -> list[dict]:
    redis = runtime.current().redis
    entries = (events.decode(fields) for _id, fields in redis.xrange(events.chat_stream_key(chat_id)))
    return [e for e in entries if e.get("message_id", (e.get("message") or {}).get("id")) == reply_uuid]


def stored(reply_id: int) -> Message:
    with runtime.session() as db:
        return db.get(Message, reply_id)


@pytest.fixture
def side_queue():
    q = queues.queue(f"shutdown-{uuid.uuid4().hex[:6]}", runtime.current().redis)
    yield q
    q.delete(delete_jobs=True)


def test_reply_still_running_after_the_grace_ends_failed_with_its_text(make_chat, alice, fake_upstream, side_queue):
    fake_upstream.configure(tokens=400, delay_ms=20)
    chat_id, reply_uuid, reply_id = pending_reply(make_chat, alice)
    pool = ThreadPool(side_queue.connection, [side_queue.name], 2).start()
    job = side_queue.enqueue_job(queues.reply_job(side_queue, reply_id, reply_uuid, timeout_s=60))
    wait_for(lambda: len(streamed(chat_id, reply_uuid)) > 3)

    started = time.monotonic()
    pool.shutdown(grace_s=0.3)
    assert time.monotonic() - started < 5
    reply = stored(reply_id)
    assert reply.status == "FAILED" and reply.error_code == "worker_lost"
    assert reply.content and FULL_TEXT.startswith(reply.content) and reply.content != FULL_TEXT
    last = streamed(chat_id, reply_uuid)[-1]
    assert last["type"] == events.REPLY_ERROR and last["error_code"] == "worker_lost"
    assert last["message"]["content"] == reply.content
    assert job.id not in StartedJobRegistry(queue=side_queue).get_job_ids()


def test_reply_that_ends_within_the_grace_is_delivered(make_chat, alice, fake_upstream, side_queue):
    fake_upstream.configure(tokens=25, delay_ms=20)
    chat_id, reply_uuid, reply_id = pending_reply(make_chat, alice)
    pool = ThreadPool(side_queue.connection, [side_queue.name], 2).start()
    side_queue.enqueue_job(queues.reply_job(side_queue, reply_id, reply_uuid, timeout_s=60))
    wait_for(lambda: streamed(chat_id, reply_uuid))

    pool.shutdown(grace_s=10)
    reply = stored(reply_id)
    assert reply.status == "DELIVERED" and reply.content == FULL_TEXT[:len("".join(f"t{i} " for i in range(25)))]
    assert side_queue.count == 0


def test_maintenance_in_a_worker_thread_ends_a_dead_workers_reply(make_chat, alice, side_queue):
    """RQ runs a dead worker's failure callback under SIGALRM, which only works in a main thread."""
    redis = side_queue.connection
    chat_id, reply_uuid, reply_id = pending_reply(make_chat, alice)
    events.publish(redis, chat_id, {"type": events.REPLY_CHUNK, "message_id": reply_uuid, "chunk": "t0 ", "offset": 0})
    job = queues.reply_job(side_queue, reply_id, reply_uuid, timeout_s=30)
    job.save()
    dead = ThreadWorker([side_queue], connection=redis, name=f"dead-{reply_uuid}")
    dead.prepare_execution(job)
    dead.prepare_job_execution(job)
    registry = StartedJobRegistry(queue=side_queue)
    redis.zadd(registry.key, {member: 1 for member in redis.zrange(registry.key, 0, -1)})  # its heartbeat expired

    maintenance = threading.Thread(target=ThreadWorker([side_queue], connection=redis).clean_registries)
    maintenance.start()
    maintenance.join(10)
    reply = stored(reply_id)
    assert reply.status == "FAILED" and reply.error_code == "worker_lost" and reply.content == "t0 "
    assert registry.get_job_ids() == []


@pytest.mark.skipif(not REAL_SERVICES, reason="python -m workers needs Redis and a database it shares (real services)")
def test_sigterm_to_a_worker_process(make_chat, alice, fake_upstream, settings, side_queue):
    fake_upstream.configure(tokens=400, delay_ms=20)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "SECRET_KEY": settings.secret_key, "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": fake_upstream.base_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers", "--queues", side_queue.name, "--any-queue", "--threads", "2", "--grace", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: Worker.count(connection=side_queue.connection, queue=side_queue) == 2, timeout=30)
        chat_id, reply_uuid, reply_id = pending_reply(make_chat, alice)
        with bound(request_id="trace-sigterm"):
            job = side_queue.enqueue_job(queues.reply_job(side_queue, reply_id, reply_uuid, timeout_s=60))
        wait_for(lambda: len(streamed(chat_id, reply_uuid)) > 3)

        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(timeout=20) == 0
        assert time.monotonic() - started < 1 + 6  # the grace, then the hand-back
    finally:
        if worker.poll() is None:
            worker.kill()
        _, err = worker.communicate()

    reply = stored(reply_id)
    assert reply.status == "FAILED" and reply.error_code == "worker_lost"
    assert reply.content and FULL_TEXT.startswith(reply.content)
    assert streamed(chat_id, reply_uuid)[-1]["error_code"] == "worker_lost"
    assert job.id not in StartedJobRegistry(queue=side_queue).get_job_ids()
    assert Worker.count(connection=side_queue.connection, queue=side_queue) == 0
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is a JSON object
    assert any("ending 1 running replies" in line["msg"] for line in lines)
