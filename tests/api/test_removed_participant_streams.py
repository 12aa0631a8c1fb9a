"""A participant removed from a chat while a reply streams to them: their SSE stream of the reply
ends (001's /v1/chat/stream and 004's /chat/send), as their chat sockets close 4403; the reply
goes on, is stored, and streams on to the other members."""
from __future__ import annotations

import json

from httpx_sse import connect_sse

from tests.api.rag_helpers import events
from tests.conftest import wait_for

ACCESS_REVOKED = {"error": "Access denied to this chat: you are no longer one of its participants",
                  "error_code": "access_revoked"}


def remove(api, owner, chat_uuid: str, member) -> None:
    removed = api.delete(f"/api/v1/chat/chats/{chat_uuid}/participants/{member['id']}", headers=owner.headers)
    assert removed.status_code == 200, removed.text


def add(api, owner, chat_uuid: str, member) -> None:
    added = api.post(f"/api/v1/chat/chats/{chat_uuid}/participants", json={"user_id": member["id"]},
                     headers=owner.headers)
    assert added.status_code == 201, added.text


def session_stream(api, account, session_id: int, headers=None):
    request = {"model": "gpt-3.5-turbo", "session_id": session_id, "messages": [{"role": "user", "content": "hi"}]}
    return connect_sse(api, "POST", "/v1/chat/stream", json=request, headers={**account.headers, **(headers or {})})


def test_a_session_stream_of_a_removed_participant_ends_with_access_revoked(api, alice, make_user, make_chat,
                                                                           fake_upstream):
    """001: `event: error` (`access_revoked`) and no `[DONE]`; a resume is 404, as for any session not
    theirs. The owner resuming the same reply gets all of it; bob added back resumes it past his removal."""
    fake_upstream.configure(tokens=40, delay_ms=50)
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP", title="Shared with bob", ai_model="gpt-3.5-turbo")
    chat_uuid = chat["id"]
    add(api, alice, chat_uuid, bob)
    sessions = api.get("/v1/chat/history", headers=bob.headers).json()["sessions"]
    [session_id] = [s["id"] for s in sessions if s["title"] == "Shared with bob"]
    seen = []
    with session_stream(api, bob, session_id) as sse:
        for event in sse.iter_sse():
            seen.append(event)
            if len(seen) == 2:
                remove(api, alice, chat_uuid, bob)
    assert seen[-1].event == "error" and json.loads(seen[-1].data) == ACCESS_REVOKED
    assert "[DONE]" not in [e.data for e in seen] and len(seen) < 30
    refused = api.post("/v1/chat/stream", json={}, headers={**bob.headers, "Last-Event-ID": seen[1].id})
    assert (refused.status_code, refused.json()) == (404, {"detail": "Chat session not found"})

    with session_stream(api, alice, session_id, {"Last-Event-ID": seen[0].id}) as sse:
        rest = [e.data for e in sse.iter_sse()]
    assert rest == [f"t{i} " for i in range(1, 40)] + ["[DONE]"]
    add(api, alice, chat_uuid, bob)
    with session_stream(api, bob, session_id, {"Last-Event-ID": seen[1].id}) as sse:
        assert [e.data for e in sse.iter_sse()] == [f"t{i} " for i in range(2, 40)] + ["[DONE]"]


def test_a_rag_stream_of_a_removed_participant_ends_with_access_revoked(api, alice, make_user, make_chat,
                                                                       fake_upstream):
    """004 (an EventSource's GET): an `error` event (`access_revoked`) and no `done`; a resume is 404
    `Reply not found`, as for a reply not theirs. The reply is stored whole for the others."""
    fake_upstream.configure(tokens=40, delay_ms=50)
    bob = make_user("bob")
    chat_uuid = make_chat(alice, chat_type="GROUP")["id"]
    add(api, alice, chat_uuid, bob)
    seen = []
    params = {"message": "hello", "session_id": chat_uuid, "auth_token": bob["access_token"]}
    with connect_sse(api, "GET", "/chat/send", params=params) as sse:
        for event_id, payload in events(api, "GET", sse):
            seen.append((event_id, payload))
            if [p["type"] for _, p in seen].count("token") == 1 and payload["type"] == "token":
                remove(api, alice, chat_uuid, bob)
    assert seen[-1][1] == {"type": "error", **ACCESS_REVOKED}
    kinds = [p["type"] for _, p in seen]
    assert "done" not in kinds and kinds.count("token") < 30
    first_token = next(event_id for event_id, p in seen if p["type"] == "token")
    refused = api.post("/chat/send", json={"message": "x"}, headers={**bob.headers, "Last-Event-ID": first_token})
    assert (refused.status_code, refused.json()) == (404, {"detail": "Reply not found"})

    def stored():
        messages = api.get(f"/chat/sessions/{chat_uuid}", headers=alice.headers).json()["messages"]
        return messages[-1]["content"] == "".join(f"t{i} " for i in range(40)) and messages

    wait_for(stored, what="the whole reply stored")
