"""Replies share the pooled connection to the upstream instead of opening one each."""
from __future__ import annotations

import uuid

from tests.conftest import wait_for
from tests.workers.test_reply_failures import finished_reply, send
from workers import runtime, upstream

KEY_URL = "/api/v1/users/me/api-keys/openai"


def wait_until_released(app) -> None:
    """A reply is stored before its run gives the connection back to the pool: wait for that."""
    pool = app.extensions["embedded_pool"]
    wait_for(lambda: not pool.busy(), timeout=5.0, what="the worker thread is free")


def test_consecutive_replies_reuse_one_upstream_connection(api, alice, make_chat, fake_upstream, app):
    """A reply closed its response at `[DONE]`, before the stream's last chunk was read, so the
    client dropped the connection: every reply opened a new one (over TLS, a new handshake
    before its first token)."""
    chat = make_chat(alice)
    for _ in range(2):
        send(api, alice, chat["id"])
        assert finished_reply(api, alice, chat["id"])["status"] == "DELIVERED"
        wait_until_released(app)
    first, second = (request["peer"] for request in fake_upstream.completions)
    assert first == second


def test_an_upstream_that_keeps_talking_after_done_does_not_hold_the_worker_thread(api, alice, make_chat,
                                                                                  fake_upstream, app):
    """Reading the body's end after `[DONE]` is bounded: an upstream that goes on sending (here
    comment lines for 20 s) has its connection closed instead of keeping a worker thread."""
    fake_upstream.configure(tokens=2, delay_ms=20, trailing_lines=1000)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    assert finished_reply(api, alice, chat["id"])["status"] == "DELIVERED"
    pool = app.extensions["embedded_pool"]
    wait_for(lambda: not pool.busy(), timeout=5.0)


def test_an_upstream_silent_after_done_does_not_hold_the_worker_thread(api, alice, make_chat, fake_upstream, app,
                                                                       monkeypatch):
    """An upstream that sends `[DONE]` and then neither ends its body nor sends a line kept the
    worker thread until the read timeout (`UPSTREAM_TIMEOUT_S`, 60 s by default), though the reply
    was already stored and announced: its connection is now cut a fraction of a second after, and
    the next reply opens a new one."""
    monkeypatch.setattr(runtime.current().settings, "upstream_timeout_s", 60.0)
    fake_upstream.configure(tokens=2, end_delay_ms=30_000)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    assert finished_reply(api, alice, chat["id"])["status"] == "DELIVERED"
    pool = app.extensions["embedded_pool"]
    wait_for(lambda: not pool.busy(), timeout=3.0, what="the worker thread is free")
    fake_upstream.configure(end_delay_ms=0)
    send(api, alice, chat["id"])
    assert finished_reply(api, alice, chat["id"])["status"] == "DELIVERED"
    cut, fresh = (request["peer"] for request in fake_upstream.completions)
    assert cut != fresh


def test_replies_on_different_users_keys_share_the_upstream_connection(api, make_user, make_chat, fake_upstream,
                                                                       app):
    """Each user key had a client of its own, with its own connection pool and TLS context (25 ms
    and 0.9 MB each here, kept for the worker process's life): a user's first reply opened a new
    connection, and memory grew with every user who set a key. One pool now serves every key."""
    keys = []
    for user in (make_user("alice"), make_user("bob")):
        keys.append(f"sk-test-{uuid.uuid4().hex}")
        assert api.put(KEY_URL, json={"api_key": keys[-1]}, headers=user.headers).status_code == 200
        chat = make_chat(user)
        send(api, user, chat["id"])
        assert finished_reply(api, user, chat["id"])["status"] == "DELIVERED"
        wait_until_released(app)
    first, second = (r for r in fake_upstream.completions if r["path"].endswith("/chat/completions"))
    assert [first["headers"]["authorization"], second["headers"]["authorization"]] == [f"Bearer {k}" for k in keys]
    assert first["peer"] == second["peer"]


def test_a_cookie_one_users_reply_got_is_not_sent_with_another_users(api, make_user, make_chat, fake_upstream):
    """Clients sharing one connection pool shared its cookie jar: a cookie the upstream set on one
    user's key (a gateway's session or affinity cookie) went with every other user's requests."""
    fake_upstream.configure(set_cookie="session=alice-only; Path=/")
    for user in (make_user("alice"), make_user("bob")):
        key = f"sk-test-{uuid.uuid4().hex}"
        assert api.put(KEY_URL, json={"api_key": key}, headers=user.headers).status_code == 200
        chat = make_chat(user)
        send(api, user, chat["id"])
        assert finished_reply(api, user, chat["id"])["status"] == "DELIVERED"
    sent = [r["headers"].get("cookie") for r in fake_upstream.completions if r["path"].endswith("/chat/completions")]
    assert sent == [None, None]


def test_a_process_keeps_a_bounded_number_of_clients(settings, monkeypatch):
    """One client per user key was kept for the process's life: the oldest now make room."""
    monkeypatch.setattr(upstream, "MAX_CLIENTS", 3)
    monkeypatch.setattr(upstream, "_clients", {})
    made = [upstream.client_for(upstream.Upstream("primary", settings.openai_base_url, f"sk-{n}", guarded=False), 5.0)
            for n in range(4)]
    assert len(upstream._clients) == 3 and made[0] not in upstream._clients.values()
    assert len({id(client._client) for client in made}) == 1  # one connection pool for all
