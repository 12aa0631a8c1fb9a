"""AI services of the chat API (000 endpoints 8-12): breaker, fallback, health, ai-message, limits."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from models import Message
from tests.conftest import REAL_SERVICES, wait_for
from tests.fake_openai import FakeOpenAI
from web.services import models as model_service
from workers import runtime, upstream


@pytest.fixture
def fallback_upstream(monkeypatch):
    fake = FakeOpenAI().start()
    fake.configure(reply="From the fallback. ")
    settings = runtime.current().settings
    monkeypatch.setattr(settings, "fallback_openai_base_url", fake.base_url)
    monkeypatch.setattr(settings, "fallback_openai_api_key", "fallback-key")
    yield fake
    fake.stop()


def send(api, account, chat_id, content="Hello"):
    response = api.post(f"/api/v1/chat/chats/{chat_id}/messages", json={"content": content}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def last_reply(api, account, chat_id):
    messages = api.get(f"/api/v1/chat/chats/{chat_id}", headers=account.headers).json()["messages"]
    reply = [m for m in messages if m["message_type"] == "AI"][-1]
    return reply if reply["status"] != "PROCESSING" else None


def health(api, account):
    return api.get("/api/v1/chat/langchain/health", headers=account.headers).json()["data"]


def test_breaker_opens_after_five_failures_then_recovers(api, alice, make_chat, fake_upstream, monkeypatch):
    # Open for a minute while the open circuit is checked (a busy machine takes over a second to
    # send five messages); the timeout is read at each check, so shortening it later half-opens it.
    monkeypatch.setattr(runtime.current().settings, "breaker_timeout_s", 60)
    fake_upstream.configure(fail_status=503)
    chat = make_chat(alice)
    for i in range(5):
        send(api, alice, chat["id"], f"try {i}")
        wait_for(lambda: last_reply(api, alice, chat["id"]))
    data = health(api, alice)
    assert data["circuit_breaker"]["state"] == "OPEN" and data["circuit_breaker"]["failure_count"] == 5
    assert data["circuit_breaker"]["failure_threshold"] == 5 and data["circuit_breaker"]["last_failure_time"]
    assert data["service_health"]["status"] == "unhealthy" or data["service_health"]["circuit_breaker_state"] == "OPEN"
    assert data["fallback_available"] is False

    calls = len(fake_upstream.completions)
    send(api, alice, chat["id"], "while open")
    reply = wait_for(lambda: last_reply(api, alice, chat["id"]))
    assert reply["status"] == "FAILED"
    assert len(fake_upstream.completions) == calls  # an open circuit does not call the upstream

    monkeypatch.setattr(runtime.current().settings, "breaker_timeout_s", 1)
    time.sleep(1.1)  # HALF_OPEN: one trial call, which succeeds and closes the circuit
    fake_upstream.configure(fail_status=None, tokens=2)
    assert health(api, alice)["circuit_breaker"]["state"] == "HALF_OPEN"
    send(api, alice, chat["id"], "trial")
    assert wait_for(lambda: last_reply(api, alice, chat["id"]))["status"] == "DELIVERED"
    assert health(api, alice)["circuit_breaker"]["state"] == "CLOSED"


def test_a_users_own_key_being_rate_limited_does_not_open_the_circuit(api, alice, make_user, make_chat,
                                                                      fake_upstream):
    """A 429 to a user's key (on the server's address) is that key's quota, not the service's state:
    it must not shut the primary off for every other user."""
    api.put("/api/v1/users/me/api-keys/openai", json={"api_key": "sk-alice-own-key-123456"}, headers=alice.headers)
    fake_upstream.configure(fail_status=429)
    chat = make_chat(alice)
    before = health(api, alice)["circuit_breaker"]["failure_count"]
    for i in range(6):
        send(api, alice, chat["id"], f"try {i}")
        assert wait_for(lambda: last_reply(api, alice, chat["id"]))["status"] == "FAILED"
    breaker = health(api, alice)["circuit_breaker"]
    assert breaker["state"] == "CLOSED" and breaker["failure_count"] == before
    fake_upstream.configure(fail_status=None, tokens=2)
    bob = make_user("bob")
    theirs = make_chat(bob)
    send(api, bob, theirs["id"], "still served?")
    assert wait_for(lambda: last_reply(api, bob, theirs["id"]))["status"] == "DELIVERED"


def test_fallback_takes_over_when_primary_fails(api, alice, make_chat, connect, fake_upstream, fallback_upstream):
    fake_upstream.configure(fail_status=500)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    done = ws.until("ai_response_complete")[-1]["message"]
    assert done["content"] == "From the fallback. " and done["service_used"] == "openai"
    assert fallback_upstream.completions[-1]["headers"]["authorization"] == "Bearer fallback-key"
    status = api.get("/api/v1/chat/services/status", headers=alice.headers).json()["data"]
    assert status["fallback_services"]["direct_openai"]["status"] == "available"
    assert status["integration_features"]["automatic_fallback"] == "enabled"


def test_primary_reply_reports_langchain(api, alice, make_chat, connect):
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    assert ws.until("ai_response_complete")[-1]["message"]["service_used"] == "langchain"


def test_health_and_status_shapes_when_healthy(api, alice):
    data = health(api, alice)
    assert data["service_health"]["status"] == "healthy" and data["service_health"]["response_time_ms"] >= 0
    assert data["circuit_breaker"] == {"state": "CLOSED", "failure_count": 0, "failure_threshold": 5,
                                       "timeout_seconds": 60, "last_failure_time": None}
    assert data["integration_status"] == "active"
    status = api.get("/api/v1/chat/services/status", headers=alice.headers).json()
    assert status["success"] is True and status["data"]["websocket_manager"]["status"] == "operational"
    connection = api.post("/api/v1/chat/test/connection", headers=alice.headers).json()
    assert connection["data"]["status"] == "healthy"
    assert connection["data"]["database"]["status"] == "healthy" and connection["data"]["redis"]["status"] == "healthy"


def test_langchain_and_openai_test_endpoints(api, alice, fake_upstream, monkeypatch):
    fake_upstream.configure(reply="Integration works. ")
    body = {"message": "Hello test", "model": "gpt-3.5-turbo", "temperature": 0.7, "system_prompt": "Test."}
    answer = api.post("/api/v1/chat/langchain/test", json=body, headers=alice.headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["request"] == body and data["response"]["content"] == "Integration works. "
    assert data["response"]["fallback_used"] is False and data["service_info"]["integration_type"] == "LangChain Service"
    assert data["user_info"] == {"user_id": alice["id"], "username": alice["username"]}
    missing = api.post("/api/v1/chat/openai/test", json=body, headers=alice.headers)
    assert missing.status_code == 503 and "not configured" in missing.json()["detail"]
    assert api.post("/api/v1/chat/langchain/test", json={"temperature": 5}, headers=alice.headers).status_code == 422
    # Every field is optional, so a bodiless POST (a "test" button, like /test/connection) runs the defaults.
    bodiless = api.post("/api/v1/chat/langchain/test", headers=alice.headers)
    assert bodiless.status_code == 200, bodiless.text
    assert bodiless.json()["data"]["request"]["message"] == "Hello! This is a test message."


def test_langchain_test_reports_fallback(api, alice, fake_upstream, fallback_upstream):
    fake_upstream.configure(fail_status=500)
    answer = api.post("/api/v1/chat/langchain/test", json={"message": "hi"}, headers=alice.headers).json()
    assert answer["data"]["response"]["fallback_used"] is True
    assert answer["data"]["service_info"]["integration_type"] == "LangChain Service (Fallback)"
    direct = api.post("/api/v1/chat/openai/test", json={"message": "hi"}, headers=alice.headers).json()
    assert direct["data"]["response"]["content"] == "From the fallback. "


def test_ai_message_non_streaming(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=4)
    chat = make_chat(alice)
    answer = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message", json={"message": "Explain ML"},
                      headers=alice.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True and body["streaming"] is False and body["service_used"] == "langchain"
    ai = body["data"]["ai_response"]
    assert ai["content"] == "t0 t1 t2 t3 " and ai["via_langchain"] is True and ai["finish_reason"] == "stop"
    assert ai["tokens_used"]["output"] == 4 and ai["tokens_used"]["total"] == ai["tokens_used"]["input"] + 4
    assert body["data"]["user_message"]["content"] == "Explain ML"
    assert body["data"]["chat_info"] == {"chat_id": chat["id"], "total_messages": 2,
                                         "total_tokens_used": ai["tokens_used"]["total"]}


def test_ai_message_streaming_over_websocket(api, alice, make_chat, connect):
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    answer = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message", json={"message": "hi", "stream": True},
                      headers=alice.headers).json()
    assert answer["streaming"] is True and answer["data"]["stream_via"] == "websocket"
    done = ws.until("ai_response_complete")[-1]["message"]
    assert done["id"] == answer["data"]["ai_message_id"]


def test_ai_message_not_saved_to_history(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=2)
    chat = make_chat(alice)
    secret = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message",
                      json={"message": "off the record", "save_to_history": False}, headers=alice.headers)
    assert secret.status_code == 200 and secret.json()["data"]["ai_response"]["content"] == "t0 t1 "
    assert secret.json()["data"]["chat_info"]["total_messages"] == 0
    history = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()
    assert history["messages"] == [] and history["chat"]["message_count"] == 0
    api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message", json={"message": "on the record"}, headers=alice.headers)
    contents = [m["content"] for m in fake_upstream.completions[-1]["body"]["messages"]]
    assert contents == ["on the record"]


def test_ai_message_errors(api, alice, make_chat, fake_upstream, monkeypatch):
    chat = make_chat(alice)
    url = f"/api/v1/chat/chats/{chat['id']}/ai-message"
    for empty in ("", "   "):  # 400 as for /messages, not a 422 for ""
        refused = api.post(url, json={"message": empty}, headers=alice.headers)
        assert refused.status_code == 400 and refused.json()["detail"] == "Message content cannot be empty"
    settings = runtime.current().settings
    monkeypatch.setattr(settings, "ai_message_wait_s", 0.5)
    fake_upstream.configure(tokens=3, first_delay_ms=1500)
    slow = api.post(url, json={"message": "slow"}, headers=alice.headers)
    assert slow.status_code == 504 and "ai_message_id" in slow.json()["detail"]
    assert "did not finish within 0.5 seconds" in slow.json()["detail"]  # it said "within 0 seconds"
    wait_for(lambda: last_reply(api, alice, chat["id"]))  # its late success must not reach the next test's breaker
    monkeypatch.setattr(settings, "openai_api_key", None)
    no_key = api.post(url, json={"message": "hi"}, headers=alice.headers)
    assert no_key.status_code == 400 and "API key" in no_key.json()["detail"]


@pytest.mark.parametrize("surface", ["000", "001", "002"])
def test_a_reply_waited_for_ends_with_404_when_its_session_is_deleted(api, alice, make_chat, fake_upstream,
                                                                       monkeypatch, surface):
    """The non-streaming reply endpoints wait for the reply; deleting the session meanwhile stops
    the reply and removes it, which ends the wait at once with 404 (it waited the whole wait, then
    answered 504 'it goes on streaming' about a reply that no longer existed)."""
    monkeypatch.setattr(runtime.current().settings, "ai_message_wait_s", 8)
    fake_upstream.configure(tokens=200, delay_ms=50)
    title = f"doomed {surface}"
    chat = make_chat(alice, title=title)
    history = api.get("/v1/chat/history", headers=alice.headers).json()["sessions"]
    session_id = next(s["id"] for s in history if s["title"] == title)
    asks = {
        "000": lambda: api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message", json={"message": "go on"},
                                headers=alice.headers),
        "001": lambda: api.post("/v1/chat/stream", headers=alice.headers, json={
            "session_id": session_id, "stream": False, "model": "gpt-3.5-turbo",
            "messages": [{"role": "user", "content": "go on"}]}),
        "002": lambda: api.post(f"/chat/conversations/{session_id}/ai-response", json={"message": "go on"},
                                headers=alice.headers),
    }

    def streaming():
        with runtime.session() as db:
            return db.scalar(select(Message.id).where(Message.chat_id == session_id, Message.status == "PROCESSING"))

    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(asks[surface])
        wait_for(streaming, what="the reply streaming")
        deleted_at = time.monotonic()
        assert api.delete(f"/v1/chat/sessions/{session_id}", headers=alice.headers).status_code == 200
        answer = asked.result()
    assert answer.status_code == 404, answer.text
    assert time.monotonic() - deleted_at < 4


def test_ai_message_503_when_circuit_open_and_no_fallback_used(api, alice, make_chat, fake_upstream,
                                                               fallback_upstream):
    fake_upstream.configure(fail_status=500)
    chat = make_chat(alice)
    url = f"/api/v1/chat/chats/{chat['id']}/ai-message"
    for _ in range(5):
        failed = api.post(url, json={"message": "x"}, headers=alice.headers)
        assert failed.status_code == 502 and failed.json()["success"] is False  # primary only: no fallback
    assert fallback_upstream.completions == []
    closed = api.post(url, json={"message": "x"}, headers=alice.headers)
    assert closed.status_code == 503
    body = closed.json()
    assert body["error_code"] == "langchain_service_unavailable" and body["success"] is False
    assert body["service_info"] == {"circuit_breaker_state": "OPEN", "service_health": "unhealthy"}


def test_user_key_goes_upstream_and_never_leaks(api, alice, make_chat, connect, fake_upstream, caplog):
    user_key = "sk-user-" + "k" * 24
    assert api.put("/api/v1/users/me/api-keys/openai", json={"api_key": user_key},
                   headers=alice.headers).status_code == 200
    caplog.set_level("DEBUG")
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    events = ws.until("ai_response_complete")
    assert fake_upstream.completions[-1]["headers"]["authorization"] == f"Bearer {user_key}"
    assert all(user_key not in str(e) for e in events)
    assert user_key not in caplog.text
    redis = runtime.current().redis
    for key in redis.scan_iter(match="rq:job:*"):
        if redis.type(key) in (b"hash", "hash"):
            assert user_key.encode() not in b"".join(
                v if isinstance(v, bytes) else str(v).encode() for v in redis.hgetall(key).values())


def test_models_list_and_validation(api, alice, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "model_aliases", "fast=gpt-4o-mini")
    listing = api.get("/api/v1/models", headers=alice.headers).json()
    ids = {m["id"]: m["source"] for m in listing["data"]}
    assert ids["gpt-4"] == "upstream" and ids["fast"] == "alias" and listing["default_model"] == "gpt-3.5-turbo"
    bad = api.post("/api/v1/chat/chats", json={"title": "t", "ai_model": "gpt-99"}, headers=alice.headers)
    assert bad.status_code == 422 and "gpt-4" in bad.json()["detail"][0]["msg"]
    assert api.post("/api/v1/chat/chats", json={"title": "t", "ai_model": "fast"}, headers=alice.headers).status_code == 200


def test_unreadable_model_list_accepts_the_default(api, alice, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "openai_base_url", "http://127.0.0.1:9/v1")
    response = api.post("/api/v1/chat/chats", json={"title": "t"}, headers=alice.headers)
    assert response.status_code == 200


def test_models_that_do_not_chat_are_refused(api, alice, fake_upstream, monkeypatch):
    """The upstream lists text-embedding-3-small among its models: it was accepted for a chat, a
    session and an agent, and every reply then failed upstream. Now it is refused naming the
    field, left out of the listing, and so are speech, image and moderation models."""
    fake_upstream.configure(models=["gpt-4", "text-embedding-3-small", "whisper-1", "tts-1", "dall-e-3",
                                    "omni-moderation-latest"])
    listed = {m["id"] for m in api.get("/api/v1/models", headers=alice.headers).json()["data"]}
    assert "gpt-4" in listed and not listed & {"text-embedding-3-small", "whisper-1", "tts-1", "dall-e-3"}
    for name in ("text-embedding-3-small", "whisper-1", "tts-1", "dall-e-3", "omni-moderation-latest"):
        chat = api.post("/api/v1/chat/chats", json={"title": "t", "ai_model": name}, headers=alice.headers)
        assert chat.status_code == 422 and chat.json()["detail"][0]["loc"] == ["body", "ai_model"]
        assert chat.json()["detail"][0]["msg"] == f"'{name}' is not a chat model"
    agent = api.post("/chat/agents", json={"name": "a", "model": "text-embedding-3-small"}, headers=alice.headers)
    assert agent.status_code == 422 and "not a chat model" in agent.text
    session = api.post("/v1/chat/stream", json={"model": "text-embedding-3-small", "stream": False,
                                                "messages": [{"role": "user", "content": "hi"}]}, headers=alice.headers)
    assert session.status_code == 400 and session.json() == {"detail": "'text-embedding-3-small' is not a chat model"}
    # also when the upstream's list cannot be read (then other names go)
    monkeypatch.setattr(runtime.current().settings, "openai_base_url", "http://127.0.0.1:9/v1")
    runtime.current().redis.delete(model_service.CACHE_KEY)
    assert api.post("/api/v1/chat/chats", json={"title": "t", "ai_model": "text-embedding-3-small"},
                    headers=alice.headers).status_code == 422
    assert fake_upstream.completions == []


@pytest.mark.parametrize("cached", [b"\xff\x00not json", b'{"id": "gpt-4"}', b'["gpt-4"]', b'[{"name": "gpt-4"}]',
                                    {"id": "gpt-4"}])
def test_an_unreadable_cached_model_list_is_fetched_again(api, alice, caplog, cached):
    """A cached list that is not JSON or not a list of models, or not even a Redis string (a hash:
    Redis refuses to read it, WRONGTYPE), was a 500 on every listing and chat creation until it
    expired; now it is a miss: fetched again, stored over it, with a warning."""
    redis = runtime.current().redis

    def store() -> None:
        if isinstance(cached, dict):
            redis.hset(model_service.CACHE_KEY, mapping=cached)
        else:
            redis.set(model_service.CACHE_KEY, cached, ex=300)

    store()
    listing = api.get("/api/v1/models", headers=alice.headers)
    assert listing.status_code == 200 and listing.json()["upstream_list_available"] is True
    assert "gpt-4" in {m["id"] for m in listing.json()["data"]}
    assert "unreadable cached model list" in caplog.text
    assert model_service.read_cached(redis.get(model_service.CACHE_KEY))  # the list fetched, stored over it
    redis.delete(model_service.CACHE_KEY)
    store()
    created = api.post("/api/v1/chat/chats", json={"title": "t", "ai_model": "gpt-4"}, headers=alice.headers)
    assert created.status_code == 200, created.text


def test_request_rate_limit_per_user(api, make_user, monkeypatch):
    bob = make_user("bob")
    monkeypatch.setattr(runtime.current().settings, "rate_limit", "3/minute")
    responses = [api.get("/api/v1/chat/chats", headers=bob.headers) for _ in range(4)]
    statuses = [r.status_code for r in responses]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    first = responses[0].headers  # the limit's headers on every answer; when to retry only on a refusal
    assert first["X-RateLimit-Limit"] == "3" and first["X-RateLimit-Remaining"] == "2" and "Retry-After" not in first
    limited = api.get("/api/v1/auth/me", headers=bob.headers)  # one counter across routes
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert limited.json() == {"detail": "Too many requests (at most 3 per 1 minute)"}
    assert limited.headers["X-RateLimit-Remaining"] == "0"


def test_concurrent_stream_limit(api, alice, make_chat, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "max_concurrent_streams", 1)
    fake_upstream.configure(tokens=10, delay_ms=100)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    second = api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "more"}, headers=alice.headers)
    assert second.status_code == 429 and second.headers["Retry-After"] == "5"  # not the rate limit's window
    assert "at once" in second.json()["detail"]
    wait_for(lambda: last_reply(api, alice, chat["id"]))
    send(api, alice, chat["id"], "after the first finished")


def test_test_completions_take_a_stream_slot(api, alice, make_chat, fake_upstream, fallback_upstream, monkeypatch):
    """The service tests and prompt previews run a completion on a reply worker too: they count
    against MAX_CONCURRENT_STREAMS (else one user could fill the reply workers with them), and free
    their slot when they end."""
    monkeypatch.setattr(runtime.current().settings, "max_concurrent_streams", 1)
    fake_upstream.configure(tokens=10, delay_ms=100)
    chat = make_chat(alice)
    send(api, alice, chat["id"])  # holds the one slot until its reply ends
    tests = [("/api/v1/chat/langchain/test", {"message": "hi"}), ("/api/v1/chat/openai/test", {"message": "hi"}),
             ("/api/chat/prompts/preview", {"content": "Say {word}", "variables": {"word": "hi"}})]
    for url, body in tests:
        refused = api.post(url, json=body, headers=alice.headers)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5", (url, refused.text)
        assert "at once" in refused.json()["detail"]
    assert all(c["body"].get("stream") for c in fake_upstream.completions)  # replies only: no test ran
    assert fallback_upstream.completions == []
    wait_for(lambda: last_reply(api, alice, chat["id"]))
    for url, body in tests + tests:  # each ended test freed its slot
        assert api.post(url, json=body, headers=alice.headers).status_code == 200, url


def test_a_test_completion_still_running_is_504_saying_what_did_not_finish(api, alice, fake_upstream,
                                                                           fallback_upstream, monkeypatch):
    """The prompt preview said "The test did not finish", borrowed from the service tests."""
    monkeypatch.setattr(runtime.current().settings, "ai_message_wait_s", 1)
    fake_upstream.configure(first_delay_ms=2500)
    fallback_upstream.configure(first_delay_ms=2500)
    expected = [("/api/v1/chat/langchain/test", "LangChain service test"),
                ("/api/v1/chat/openai/test", "Direct OpenAI test"),
                ("/api/chat/prompts/preview", "Prompt preview")]
    for url, what in expected:
        late = api.post(url, json={"content": "hi"} if "prompts" in url else {"message": "hi"}, headers=alice.headers)
        assert late.status_code == 504 and late.json() == {"detail": f"{what} did not finish within 1 seconds"}


def test_a_test_completion_waits_a_wait_under_a_second(api, alice, fake_upstream, monkeypatch):
    """AI_MESSAGE_WAIT_S=0.5 was cut to 0 seconds: every preview was 504 "within 0 seconds" at once."""
    monkeypatch.setattr(runtime.current().settings, "ai_message_wait_s", 0.5)
    preview = api.post("/api/chat/prompts/preview", json={"content": "hi"}, headers=alice.headers)
    assert preview.status_code == 200, preview.text


def test_stats_name_only_the_callers_chats(api, alice, make_user, make_chat, connect):
    """Every signed-in user may read /stats: the totals count every socket, but another user's chat
    ids are not theirs to see (an admin sees them all)."""
    from tests.api.test_conversations_agents import make_admin

    bob = make_user("bob")
    mine, his = make_chat(alice), make_chat(bob)
    for chat, account in ((mine, alice), (his, bob)):
        connect(chat["id"], account["access_token"]).next()

    def sockets(account):
        return api.get("/api/v1/chat/stats", headers=account.headers).json()["websocket_connections"]
    seen = wait_for(lambda: (s := sockets(alice))["total_connections"] == 2 and s)
    assert seen["active_chats"] == 2 and seen["connections_per_chat"] == {mine["id"]: 1}
    assert sockets(make_admin(make_user("admin")))["connections_per_chat"] == {mine["id"]: 1, his["id"]: 1}


@pytest.mark.skipif(not REAL_SERVICES, reason="a second web process needs a shared Redis (real services)")
def test_stats_count_sockets_on_two_web_processes(api, alice, make_chat, connect, settings, tmp_path):
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "PORT": str(port), "SECRET_KEY": settings.secret_key,
           "OPENAI_API_KEY": "x", "OPENAI_BASE_URL": settings.openai_base_url or ""}
    other = subprocess.Popen([sys.executable, "-m", "gunicorn", "web:create_app()", "-w", "1"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _up(port), timeout=20)
        chat = make_chat(alice)
        here = connect(chat["id"], alice["access_token"])
        here.next()
        from tests.conftest import Socket

        there = Socket(f"ws://127.0.0.1:{port}/api/v1/chat/chats/{chat['id']}/ws?token={alice['access_token']}")
        assert there.next()["type"] == "welcome"
        stats = api.get("/api/v1/chat/stats", headers=alice.headers).json()["websocket_connections"]
        assert stats["connections_per_chat"][chat["id"]] == 2
        there.close()
    finally:
        other.send_signal(signal.SIGTERM)
        other.wait(10)


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me").status_code == 401
    except httpx.HTTPError:
        return False


def test_health_of_an_unreachable_upstream_says_what_failed(api, alice, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "openai_base_url", "http://127.0.0.1:9/v1")
    service = health(api, alice)["service_health"]
    assert service["status"] == "unhealthy"
    assert service["error"].startswith("The AI service did not answer the model list request")


def test_service_urls_shown_to_users_carry_no_credentials(api, alice, fake_upstream, fallback_upstream, monkeypatch):
    """An operator may put a gateway's credentials (or a key in the query string) in OPENAI_BASE_URL;
    every signed-in user reads the upstreams' addresses, so they are shown without them."""
    settings = runtime.current().settings
    host = fake_upstream.base_url.split("://", 1)[1]
    monkeypatch.setattr(settings, "openai_base_url", f"http://parley:s3cret@{host}?key=s3cret")
    monkeypatch.setattr(settings, "fallback_openai_base_url", f"http://fallback:s3cret@{host}")
    answers = [api.get("/api/v1/chat/langchain/health", headers=alice.headers),
               api.get("/api/v1/chat/services/status", headers=alice.headers),
               api.post("/api/v1/chat/test/connection", headers=alice.headers)]
    for answer in answers:
        assert answer.status_code == 200 and "s3cret" not in answer.text, answer.text
    status = answers[1].json()["data"]
    assert status["langchain_service"]["base_url"] == f"http://{host}"
    assert status["fallback_services"]["direct_openai"]["service_url"] == f"http://{host}"


def half_open(monkeypatch):
    """Open the primary's circuit with a 1 s timeout and wait until it is HALF_OPEN; its breaker."""
    rt = runtime.current()
    monkeypatch.setattr(rt.settings, "breaker_timeout_s", 1)
    guard = upstream.breaker(rt.redis, rt.settings, upstream.PRIMARY)
    for _ in range(5):
        guard.record_failure()
    time.sleep(1.1)
    assert guard.status().state == "HALF_OPEN"
    return guard


def test_trial_refused_by_the_upstream_releases_the_half_open_circuit(api, alice, make_chat, fake_upstream,
                                                                     monkeypatch):
    """A 400 answer shows the upstream is up: the next call goes through, not 503 until the lock expires."""
    half_open(monkeypatch)
    chat = make_chat(alice)
    url = f"/api/v1/chat/chats/{chat['id']}/ai-message"
    fake_upstream.configure(fail_status=400)
    refused = api.post(url, json={"message": "trial"}, headers=alice.headers)
    assert refused.status_code == 502 and refused.json()["error_code"] == "upstream_bad_request"
    fake_upstream.configure(fail_status=None, tokens=2)
    after = api.post(url, json={"message": "next"}, headers=alice.headers)
    assert after.status_code == 200, after.text
    assert health(api, alice)["circuit_breaker"]["state"] == "CLOSED"


def test_trial_cut_mid_stream_releases_the_half_open_circuit(api, alice, make_chat, fake_upstream, monkeypatch):
    """A stream that breaks off says nothing the breaker counts, but must not keep the trial's lock."""
    half_open(monkeypatch)
    chat = make_chat(alice)
    url = f"/api/v1/chat/chats/{chat['id']}/ai-message"
    fake_upstream.configure(tokens=5, fail_after=2)
    cut = api.post(url, json={"message": "trial"}, headers=alice.headers)
    assert cut.status_code == 502 and cut.json()["data"]["partial_content"] == "t0 t1 "
    fake_upstream.configure(fail_after=None, tokens=2)
    after = api.post(url, json={"message": "next"}, headers=alice.headers)
    assert after.status_code == 200, after.text


def test_probe_refused_by_the_upstream_releases_the_half_open_circuit(api, alice, fake_upstream, monkeypatch):
    half_open(monkeypatch)
    fake_upstream.configure(fail_status=404)
    assert api.post("/api/v1/chat/langchain/test", json={"message": "hi"}, headers=alice.headers).status_code != 200
    fake_upstream.configure(fail_status=None)
    test = api.post("/api/v1/chat/langchain/test", json={"message": "hi"}, headers=alice.headers)
    assert test.status_code == 200, test.text


def test_ai_message_503_while_the_trial_runs_stores_nothing(api, alice, make_chat, monkeypatch):
    """HALF_OPEN with the one trial under way refuses like OPEN: 503 and nothing stored."""
    guard = half_open(monkeypatch)
    assert guard.allow()  # another caller's trial
    chat = make_chat(alice)
    refused = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message", json={"message": "x"}, headers=alice.headers)
    assert refused.status_code == 503 and refused.json()["error_code"] == "langchain_service_unavailable"
    assert refused.json()["service_info"]["circuit_breaker_state"] == "HALF_OPEN"
    history = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()
    assert history["messages"] == [] and history["chat"]["message_count"] == 0


def test_ai_message_on_the_users_own_address_ignores_the_servers_open_circuit(api, alice, make_chat, fake_upstream):
    """A user whose key has its own base_url is answered there, a service the server's breaker
    does not watch: the primary's open circuit is no reason for a 503."""
    own_address = fake_upstream.base_url.replace("127.0.0.1", "localhost")  # not the server's OPENAI_BASE_URL
    saved = api.put("/api/v1/users/me/api-keys/openai", json={"api_key": "sk-own-" + "k" * 24, "base_url": own_address},
                    headers=alice.headers)
    assert saved.status_code == 200, saved.text
    rt = runtime.current()
    guard = upstream.breaker(rt.redis, rt.settings, upstream.PRIMARY)
    for _ in range(5):
        guard.record_failure()
    assert guard.status().state == "OPEN"
    fake_upstream.configure(tokens=2)
    chat = make_chat(alice)
    answer = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message", json={"message": "hi"}, headers=alice.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ai_response"]["content"] == "t0 t1 "


def test_a_users_own_failing_address_leaves_the_servers_circuit_closed(api, alice, make_chat, fake_upstream):
    """Replies on a user's own base_url that fail with 5xx count on no breaker: one user's broken
    endpoint does not open the circuit of the shared upstream for everyone."""
    own_address = fake_upstream.base_url.replace("127.0.0.1", "localhost")  # not the server's OPENAI_BASE_URL
    assert api.put("/api/v1/users/me/api-keys/openai", json={"api_key": "sk-own-" + "k" * 24, "base_url": own_address},
                   headers=alice.headers).status_code == 200
    fake_upstream.configure(fail_status=503)
    chat = make_chat(alice)
    for i in range(6):
        send(api, alice, chat["id"], f"try {i}")
        assert wait_for(lambda: last_reply(api, alice, chat["id"]))["status"] == "FAILED"
    breaker = health(api, alice)["circuit_breaker"]
    assert breaker["state"] == "CLOSED" and breaker["failure_count"] == 0
