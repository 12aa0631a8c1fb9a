"""Replies that end badly: no key, upstream errors, timeouts, a dead worker, stops."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from sqlalchemy import select

from models import Chat, Message
from tests.conftest import wait_for
from tests.workers.test_orphaned_replies import reply_without_job, status_of
from workers import events, leases, queues, runtime
from workers.pool import ThreadWorker


def send(api, account, chat_id, content="Hello"):
    response = api.post(f"/api/v1/chat/chats/{chat_id}/messages", json={"content": content}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def last_reply(api, account, chat_id):
    history = api.get(f"/api/v1/chat/chats/{chat_id}", headers=account.headers).json()
    return [m for m in history["messages"] if m["message_type"] == "AI"][-1]


def finished_reply(api, account, chat_id):
    return wait_for(lambda: (r := last_reply(api, account, chat_id))["status"] != "PROCESSING" and r)


def test_no_api_key_fails_with_documented_error(api, alice, make_chat, connect, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "openai_api_key", None)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    error = ws.until("ai_error")[-1]
    assert error["error_code"] == "no_api_key"
    assert error["error"] == "Please set up your OpenAI API key in Settings to enable AI responses."
    assert error["chat_id"] == chat["id"] and error["timestamp"]
    assert finished_reply(api, alice, chat["id"])["status"] == "FAILED"


@pytest.mark.parametrize("status,code", [(500, "upstream_error"), (429, "rate_limited"), (401, "invalid_api_key")])
def test_upstream_error_status(api, alice, make_chat, connect, fake_upstream, status, code):
    fake_upstream.configure(fail_status=status)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    assert ws.until("ai_error")[-1]["error_code"] == code
    reply = finished_reply(api, alice, chat["id"])
    assert reply["status"] == "FAILED" and reply["content"] == ""
    assert reply["tokens_used"] == 0  # a reply refused before its first token used nothing
    with runtime.session() as db:
        assert db.scalar(select(Chat.total_tokens).where(Chat.uuid == chat["id"])) == 0


def test_upstream_dies_mid_stream_keeps_partial_content(api, alice, make_chat, connect, fake_upstream):
    fake_upstream.configure(tokens=10, fail_after=3)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    error = ws.until("ai_error")[-1]
    assert error["error_code"] == "upstream_error" and error["message"]["content"] == "t0 t1 t2 "
    reply = finished_reply(api, alice, chat["id"])
    assert reply["status"] == "FAILED" and reply["content"] == "t0 t1 t2 "


def test_upstream_timeout(api, alice, make_chat, connect, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "upstream_timeout_s", 0.5)
    fake_upstream.configure(tokens=3, first_delay_ms=1500)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    assert ws.until("ai_error")[-1]["error_code"] == "upstream_timeout"


def test_job_timeout_ends_reply_failed(api, alice, make_chat, connect, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "reply_job_timeout_s", 1)
    fake_upstream.configure(tokens=30, delay_ms=100)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    error = ws.until("ai_error", timeout=10)[-1]
    assert error["error_code"] == "timeout" and error["message"]["content"].startswith("t0 ")
    assert finished_reply(api, alice, chat["id"])["status"] == "FAILED"


def test_dead_worker_leaves_no_reply_processing(api, alice, make_chat):
    """RQ's maintenance finds the abandoned job and our failure callback ends the reply."""
    rt = runtime.current()
    chat = make_chat(alice)
    with rt.sessions() as db:
        chat_row = db.scalar(select(Chat.id).where(Chat.uuid == chat["id"]))
        reply = Message(chat_id=chat_row, role="assistant", status="PROCESSING", content="", model="gpt-4")
        db.add(reply)
        db.commit()
        reply_id, reply_uuid = reply.id, reply.uuid
    for piece in ("t0 ", "t1 "):  # what the worker streamed before it was killed
        events.publish(rt.redis, chat_row, {"type": events.REPLY_CHUNK, "message_id": reply_uuid,
                                            "chat_id": chat["id"], "chunk": piece, "offset": 0})
    q = queues.queue("replies-killed", rt.redis)  # no worker listens here: the job's worker "died"
    job = queues.reply_job(q, reply_id, reply_uuid, timeout_s=30)
    job.save()
    dead = ThreadWorker([q], connection=rt.redis, name=f"dead-{reply_uuid}")
    dead.prepare_execution(job)
    dead.prepare_job_execution(job)
    StartedJobRegistry(queue=q).cleanup(timestamp=time.time() + 10**6)

    stored = last_reply(api, alice, chat["id"])
    assert stored["status"] == "FAILED" and stored["content"] == "t0 t1 "
    tail = rt.redis.xrevrange(events.chat_stream_key(chat_row), count=1)[0][1]
    assert events.decode(tail)["error_code"] == "worker_lost"


def test_stop_over_rest_keeps_partial_content(api, alice, make_chat, connect, fake_upstream):
    fake_upstream.configure(tokens=200, delay_ms=50)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    start = ws.until("ai_response_chunk")[1]["message"]
    ws.until("ai_response_chunk")
    stopped_at = time.monotonic()
    answer = api.post(f"/api/v1/chat/chats/{chat['id']}/messages/{start['id']}/stop", headers=alice.headers)
    assert answer.status_code == 200 and answer.json()["message_id"] == start["id"]
    done = ws.until("ai_response_complete")[-1]
    assert time.monotonic() - stopped_at < 1.0
    assert done["message"]["status"] == "CANCELLED"
    reply = finished_reply(api, alice, chat["id"])
    assert reply["status"] == "CANCELLED" and reply["content"] == done["message"]["content"]
    assert reply["content"].startswith("t0 t1 ") and len(reply["content"].split()) < 200


def test_stop_over_socket_while_upstream_is_silent(api, alice, make_chat, connect, fake_upstream):
    """Stop works within a second even when no token arrives to check the flag between."""
    fake_upstream.configure(tokens=3, first_delay_ms=4000)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    start = ws.until("ai_response_start")[-1]["message"]
    stopped_at = time.monotonic()
    ws.send({"type": "stop", "message_id": start["id"].upper()})  # a UUID in either case
    events_seen = ws.until("ai_response_complete")
    assert time.monotonic() - stopped_at < 1.0
    assert any(e["type"] == "stop_ack" for e in events_seen)
    assert events_seen[-1]["message"]["status"] == "CANCELLED" and events_seen[-1]["message"]["content"] == ""


def test_stop_of_finished_reply_is_harmless(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=2)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    reply = finished_reply(api, alice, chat["id"])
    answer = api.post(f"/api/v1/chat/chats/{chat['id']}/messages/{reply['id']}/stop", headers=alice.headers)
    assert answer.status_code == 200 and answer.json()["status"] == "DELIVERED"
    missing = api.post(f"/api/v1/chat/chats/{chat['id']}/messages/{chat['id']}/stop", headers=alice.headers)
    assert missing.status_code == 404


def test_enqueue_twice_runs_once(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=20, delay_ms=20)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    rt = runtime.current()
    with rt.sessions() as db:
        reply = db.scalar(select(Message).join(Chat, Chat.id == Message.chat_id)
                          .where(Chat.uuid == chat["id"], Message.role == "assistant"))
        queues.enqueue_reply(rt.redis, reply.id, reply.uuid, timeout_s=30)
    finished_reply(api, alice, chat["id"])
    time.sleep(0.3)
    assert len(fake_upstream.completions) == 1


@pytest.mark.parametrize("delete", ["chats API status", "conversations API"])
def test_deleting_a_chat_stops_its_reply(api, alice, make_chat, fake_upstream, delete):
    """003's DELETED status and 002's DELETE end the chat on every surface: its reply stops spending the upstream."""
    fake_upstream.configure(tokens=200, delay_ms=50)
    chat = make_chat(alice, title=f"deleted mid-reply by the {delete}")
    listed = api.get("/api/v1/chats", headers=alice.headers).json()
    chat_id = next(c["id"] for c in listed if c["title"] == chat["title"])
    send(api, alice, chat["id"])
    with runtime.session() as db:
        reply_uuid = db.scalar(select(Message.uuid).where(Message.chat_id == chat_id, Message.role == "assistant"))
    wait_for(lambda: fake_upstream.completions, what="the reply started")
    if delete == "conversations API":
        deleted = api.delete(f"/chat/conversations/{chat_id}", headers=alice.headers)
    else:
        deleted = api.patch(f"/api/v1/chats/{chat_id}/status", json={"status": "DELETED"}, headers=alice.headers)
    assert deleted.status_code == 200, deleted.text

    def ended() -> str | None:
        with runtime.session() as db:
            status = db.scalar(select(Message.status).where(Message.uuid == reply_uuid))
        return status if status != "PROCESSING" else None
    assert wait_for(ended, timeout=3, what="the reply ended") == "CANCELLED"


def test_stop_of_a_reply_no_worker_has_taken_yet(alice, make_chat, connect):
    """A reply still waiting in the queue is cancelled at once: its job, its slot, its end event."""
    waiting = reply_without_job(alice, make_chat, timedelta(0))
    rt = runtime.current()
    job = Job.create("workers.jobs.replies.generate_reply", args=(waiting.id,), connection=rt.redis,
                     id=queues.reply_job_id(waiting.uuid), serializer=JSONSerializer, status=JobStatus.QUEUED)
    job.save()
    with runtime.session() as db:
        chat_uuid = db.get(Chat, waiting.chat_id).uuid
    ws = connect(chat_uuid, alice["access_token"])
    ws.next()
    ws.send({"type": "stop", "message_id": waiting.uuid})
    seen = ws.until("ai_response_complete")
    assert any(e["type"] == "stop_ack" and e["status"] == "CANCELLED" for e in seen)
    assert seen[-1]["message"]["status"] == "CANCELLED" and seen[-1]["message"]["id"] == waiting.uuid
    assert status_of(waiting) == ("CANCELLED", None)
    assert job.get_status(refresh=True) == JobStatus.CANCELED
    assert rt.redis.zscore(leases.replies_key(waiting.meta["requested_by"]), waiting.uuid) is None


def test_deleting_a_session_frees_the_stream_slots_of_its_replies(api, alice, make_chat):
    """A reply no worker has taken yet is deleted with its session: its job will find nothing to
    end, so the delete gives the asker's slot back (it was held until the lease expired)."""
    waiting = reply_without_job(alice, make_chat, timedelta(0))
    slots = leases.replies_key(waiting.meta["requested_by"])
    redis = runtime.current().redis
    assert redis.zscore(slots, waiting.uuid) is not None
    assert api.delete(f"/v1/chat/sessions/{waiting.chat_id}", headers=alice.headers).status_code == 200
    assert redis.zscore(slots, waiting.uuid) is None
