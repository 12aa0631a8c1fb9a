"""Structured logs: JSON lines, a request id from request to worker, no credentials anywhere."""
from __future__ import annotations

import json
import logging
import re
import sys
import uuid

from rq.job import Job
from rq.serializers import JSONSerializer

from tests.conftest import wait_for
from workers import queues, runtime
from workers.logs import JsonFormatter, error_text, scrub


def ai_reply(api, account, chat_id):
    history = api.get(f"/api/v1/chat/chats/{chat_id}", headers=account.headers).json()["messages"]
    return [m for m in history if m["message_type"] == "AI"][-1]


def test_request_id_is_honoured_or_made_and_returned(api):
    assert api.get("/api/v1/models", headers={"X-Request-ID": "trace-42.a_b"}).headers["X-Request-ID"] == "trace-42.a_b"
    for sent in ({}, {"X-Request-ID": "no spaces; please"}, {"X-Request-ID": "x" * 65}):
        assert re.fullmatch(r"[0-9a-f]{32}", api.get("/api/v1/models", headers=sent).headers["X-Request-ID"])
    assert api.get("/no/such/page").headers["X-Request-ID"]


def test_request_id_follows_the_reply_to_the_worker(api, alice, make_chat, fake_upstream, caplog):
    caplog.set_level(logging.INFO)
    fake_upstream.configure(fail_status=500)  # the worker then logs a warning while running the job
    chat = make_chat(alice)
    request_id = f"trace-{uuid.uuid4().hex[:8]}"
    sent = api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hi"},
                    headers={**alice.headers, "X-Request-ID": request_id})
    assert sent.headers["X-Request-ID"] == request_id
    reply = wait_for(lambda: (r := ai_reply(api, alice, chat["id"]))["status"] == "FAILED" and r)
    job_id = queues.reply_job_id(reply["id"])
    job = Job.fetch(job_id, connection=runtime.current().redis, serializer=JSONSerializer)
    assert job.meta["request_id"] == request_id

    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    access = [e for e in lines if e["logger"] == "parley.access" and e.get("request_id") == request_id]
    assert access and access[0]["route"] == "/api/v1/chat/chats/<chat_id>/messages" and access[0]["status"] == 200
    worker = wait_for(lambda: [json.loads(JsonFormatter().format(r)) for r in caplog.records
                               if r.name == "workers.jobs.replies" and reply["id"] in r.getMessage()])
    assert worker[0]["request_id"] == request_id and worker[0]["job_id"] == job_id


def test_no_credential_in_any_log_line(api, server, make_user, make_chat, connect, fake_upstream, caplog):
    caplog.set_level(logging.INFO)
    account = make_user("secretive")
    api_key = f"sk-test-{uuid.uuid4().hex}"
    assert api.put("/api/v1/users/me/api-keys/openai", json={"api_key": api_key},
                   headers=account.headers).status_code == 200
    fake_upstream.configure(api_key=api_key, tokens=3)
    chat = make_chat(account)
    ws = connect(chat["id"], account["access_token"])  # the token rides in ?token=
    ws.until("welcome")
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hello"}, headers=account.headers)
    ws.until("ai_response_complete")
    # A REST route ignores a token in its URL (401), but a client may still send one: never logged either.
    api.get(f"/api/v1/chat/chats/{chat['id']}/messages?auth_token={account['access_token']}")
    api.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.valid-token"})
    api.post("/api/v1/auth/refresh", json={"refresh_token": account["refresh_token"]})
    api.post("/api/v1/auth/login", json={"username": account["username"], "password": "wrong " + account["password"]})
    api.post("/admin/login", data={"username": account["username"], "password": account["password"]})
    api.post("/api/v1/auth/logout", headers=account.headers)

    secrets = (account["password"], account["access_token"], account["refresh_token"], api_key, "not.a.valid-token")
    assert caplog.records
    for record in caplog.records:
        line = JsonFormatter().format(record)
        assert "\n" not in line
        for secret in secrets:
            assert secret not in line, f"{record.name} logged a credential: {line}"
        for secret in (account["password"], api_key):  # never logged at all, redacted or not
            assert secret not in record.getMessage()


def test_error_text_is_scrubbed_one_line_and_short():
    exc = ValueError("cannot reach https://user:hunter2@embed.example/v1\nwith sk-abcdefghijklmnop " + "x" * 500)
    text = error_text(exc)
    assert text.startswith("ValueError: cannot reach https://user:[redacted]@embed.example/v1 with [redacted-key] x")
    assert "hunter2" not in text and "\n" not in text and len(text) == 300 and text.endswith("…")


def test_formatter_scrubs_what_it_recognises():
    text = ('GET /ws?token=abc.def&last_event_id=1-0 Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig '
            '{"password": "hunter2", "api_key": "sk-abcdefghijklmnop"} key=sk-zyxwvutsrqponm')
    clean = scrub(text)
    for secret in ("abc.def", "eyJ", "hunter2", "sk-abcdefghijklmnop", "sk-zyxwvutsrqponm"):
        assert secret not in clean
    assert "last_event_id=1-0" in clean and "GET /ws" in clean
    urls = scrub("Authorization: Basic dXNlcjpwYXNz to redis://:s3cret@cache:6379/0 and "
                 "postgresql://parley:pa55word@db/parley, http://example.com:8000/v1")
    for secret in ("dXNlcjpwYXNz", "s3cret", "pa55word"):
        assert secret not in urls
    assert "redis://:[redacted]@cache:6379/0" in urls and "postgresql://parley:[redacted]@db/parley" in urls
    assert "http://example.com:8000/v1" in urls  # a port is not a password
    try:
        raise RuntimeError("failed with password=hunter2")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom\nsecond line", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "boom\nsecond line" and "hunter2" not in entry["exc"] and "RuntimeError" in entry["exc"]
