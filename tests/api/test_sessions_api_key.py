"""The sessions API (001) without an upstream key: refused up front, as 000's ai-message is."""
from __future__ import annotations

from tests.api.test_sessions import body, stored_session, stream
from workers import runtime

NO_KEY = "OpenAI API key not configured: set one in Settings to chat with AI"


def test_without_an_api_key_a_stream_is_refused_before_anything_is_stored(api, alice, fake_upstream, monkeypatch):
    """Neither the server's key nor the user's: 400 before the session, its settings or a message
    is stored (it stored them and a FAILED empty reply, then answered `event: error`), so a retry
    leaves nothing behind."""
    fake_upstream.configure(tokens=1)
    response, _ = stream(api, alice, body("first"))
    session_id = int(response.headers["X-Session-Id"])
    before = stored_session(api, alice, session_id)
    monkeypatch.setattr(runtime.current().settings, "openai_api_key", None)
    for streamed in (True, False):
        for request in (body("new", stream=streamed),
                        body("more", session_id=session_id, temperature=1.5, stream=streamed)):
            refused = api.post("/v1/chat/stream", json=request, headers=alice.headers)
            assert (refused.status_code, refused.json()) == (400, {"detail": NO_KEY}), request
    assert api.get("/v1/chat/history", headers=alice.headers).json()["total"] == 1
    assert stored_session(api, alice, session_id) == before
    assert len(fake_upstream.completions) == 1


def test_the_users_own_key_or_a_fallback_upstream_answers_without_the_servers(api, alice, fake_upstream, monkeypatch):
    fake_upstream.configure(tokens=1)
    settings = runtime.current().settings
    monkeypatch.setattr(settings, "openai_api_key", None)
    monkeypatch.setattr(settings, "fallback_openai_base_url", fake_upstream.base_url)
    monkeypatch.setattr(settings, "fallback_openai_api_key", "fallback-key")
    response, received = stream(api, alice, body())
    assert response.status_code == 200 and [e.data for e in received] == ["t0 ", "[DONE]"]
    monkeypatch.setattr(settings, "fallback_openai_api_key", None)
    monkeypatch.setattr(settings, "fallback_openai_base_url", None)
    own = api.put("/api/v1/users/me/api-keys/openai", json={"api_key": "sk-own-key", "base_url": fake_upstream.base_url},
                  headers=alice.headers)
    assert own.status_code == 200
    answer = api.post("/v1/chat/stream", json=body(stream=False), headers=alice.headers)
    assert answer.status_code == 200 and answer.json()["content"] == "t0 "
