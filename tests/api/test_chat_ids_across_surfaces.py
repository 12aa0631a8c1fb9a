"""One chat, two ids: the integer surfaces (001, 002, 003) show its UUID and the UUID surfaces
(000, 004) its integer, so a client can follow a chat from one API to another."""
from __future__ import annotations

from workers import runtime


def test_a_chat_made_on_003_can_be_followed_to_000_and_004(api, alice):
    made = api.post("/api/v1/chats", json={"title": "map", "rag_enabled": True}, headers=alice.headers).json()
    on_000 = api.get(f"/api/v1/chat/chats/{made['uuid']}", headers=alice.headers)
    assert on_000.status_code == 200 and on_000.json()["chat"]["numeric_id"] == made["id"]
    on_004 = api.get(f"/chat/sessions/{made['uuid']}", headers=alice.headers)
    assert on_004.status_code == 200
    session = on_004.json()["session"]
    assert session["id"] == made["uuid"] and session["metadata"]["numeric_id"] == made["id"]


def test_a_chat_made_on_000_can_be_followed_to_001_002_and_003(api, alice, make_chat):
    made = make_chat(alice, title="from 000")
    number = made["numeric_id"]
    assert api.get(f"/api/v1/chats/{number}", headers=alice.headers).json()["uuid"] == made["id"]
    conversation = api.get(f"/chat/conversations/{number}", headers=alice.headers).json()["data"]
    assert conversation["uuid"] == made["id"]
    sessions = api.get("/v1/chat/history", headers=alice.headers).json()["sessions"]
    assert next(s for s in sessions if s["id"] == number)["uuid"] == made["id"]


def test_000_shows_the_model_a_chat_made_elsewhere_replies_with(api, alice):
    made = api.post("/api/v1/chats", json={"title": "no model of its own"}, headers=alice.headers).json()
    chat = api.get(f"/api/v1/chat/chats/{made['uuid']}", headers=alice.headers).json()["chat"]
    assert chat["ai_model"] == runtime.current().settings.default_ai_model
