"""The chats API (003): chats, their status and types, and chats shared with the chat API (000)."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from models import Chat, Participant
from tests.conftest import wait_for
from web.errors import NotFound
from web.services import chats
from workers import runtime

CHAT_FIELDS = {"id", "user_id", "session_id", "uuid", "title", "rag_enabled", "chat_type", "status", "chat_metadata",
               "message_count", "last_activity_at", "created_at", "updated_at"}


def create_chat(api, account, **fields: Any) -> dict:
    """A chat made through 003, with a unique title so the chat API's list can find it."""
    body = {"title": f"v1 {uuid.uuid4().hex[:8]}", **fields}
    response = api.post("/api/v1/chats", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def post(api, account, chat_id: int, content: str = "hello", **fields: Any) -> dict:
    response = api.post(f"/api/v1/chats/{chat_id}/messages", json={"content": content, **fields},
                        headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def chat_uuid(api, account, chat: dict) -> str:
    """The chat API's (UUID) id of a chat made here, found by its title."""
    listed = api.get("/api/v1/chat/chats", headers=account.headers).json()
    return next(c["id"] for c in listed if c["title"] == chat["title"])


def add_member(api, owner, chat: dict, member, **fields: Any) -> None:
    """Add `member` through the chat API (003 has no participants endpoint)."""
    response = api.post(f"/api/v1/chat/chats/{chat_uuid(api, owner, chat)}/participants",
                        json={"user_id": member["id"], **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text


def test_create_chat_defaults_and_shape(api, alice):
    response = api.post("/api/v1/chats", json={}, headers=alice.headers)
    assert response.status_code == 200
    chat = response.json()
    assert set(chat) == CHAT_FIELDS
    assert isinstance(chat["id"], int) and chat["session_id"] == str(chat["id"])
    assert chat["user_id"] == str(alice["user_id"])
    assert chat["title"] is None and chat["rag_enabled"] is False and chat["chat_metadata"] is None
    assert chat["chat_type"] == "PERSONAL" and chat["status"] == "ACTIVE" and chat["message_count"] == 0
    assert chat["created_at"].endswith("Z")


def test_create_chat_with_fields(api, alice):
    chat = create_chat(api, alice, title="Team room", chat_type="GROUP", rag_enabled=True,
                       chat_metadata={"topic": "launch", "tags": ["a"]}, user_id="999", session_id="mine")
    assert chat["title"] == "Team room" and chat["chat_type"] == "GROUP" and chat["rag_enabled"] is True
    assert chat["chat_metadata"] == {"topic": "launch", "tags": ["a"]}
    assert chat["user_id"] == str(alice["user_id"]) and chat["session_id"] == str(chat["id"])  # the server's
    archived = create_chat(api, alice, chat_type="SYSTEM", status="ARCHIVED")
    assert archived["chat_type"] == "SYSTEM" and archived["status"] == "ARCHIVED"
    assert api.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers).json() == chat


def test_invalid_input_is_400_with_the_validation_list(api, alice):
    cases = [
        ({"chat_type": "DIRECT"}, "chat_type"), ({"title": ""}, "title"), ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"rag_enabled": "maybe"}, "rag_enabled"), ({"chat_metadata": "x"}, "chat_metadata"),
        ({"chat_metadata": {"notes": "x" * 16384}}, "chat_metadata"),  # shown with every chat listed
        ({"status": "DELETED"}, "status"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/chats", json=body, headers=alice.headers)
        assert response.status_code == 400, body
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", field] and detail[0]["msg"] and detail[0]["type"]
    not_json = api.post("/api/v1/chats", content=b"nope", headers=alice.headers)
    assert not_json.status_code == 400 and not_json.json()["detail"][0]["loc"] == ["body"]
    for query in ("limit=0", "limit=1001", "skip=-1", "status=DELETED", "limit=x"):
        response = api.get(f"/api/v1/chats?{query}", headers=alice.headers)
        assert response.status_code == 400 and response.json()["detail"][0]["loc"][0] == "query", query


def test_the_chat_api_keeps_its_422(api, alice):
    response = api.post("/api/v1/chat/chats", json={}, headers=alice.headers)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "title"]


def test_auth_and_unknown_routes_use_detail(api, alice):
    response = api.get("/api/v1/chats")
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}
    wrong = api.delete("/api/v1/chats", headers=alice.headers)
    assert wrong.status_code == 405 and wrong.json()["detail"]
    assert api.get("/api/v1/chats/abc", headers=alice.headers).status_code == 404


def test_get_chat_access(api, alice, make_user):
    chat = create_chat(api, alice)
    eve = make_user("eve")
    denied = api.get(f"/api/v1/chats/{chat['id']}", headers=eve.headers)
    assert denied.status_code == 403 and denied.json()["detail"] == "Access denied to this chat"
    unknown = api.get("/api/v1/chats/987654321", headers=alice.headers)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Chat not found"}


def test_list_shows_active_and_archived_with_filter_and_paging(api, make_user):
    owner = make_user("lister")
    first, second, third = (create_chat(api, owner) for _ in range(3))
    api.patch(f"/api/v1/chats/{second['id']}/status", json={"status": "ARCHIVED"}, headers=owner.headers)
    api.patch(f"/api/v1/chats/{third['id']}/status", json={"status": "DELETED"}, headers=owner.headers)
    listed = api.get("/api/v1/chats", headers=owner.headers).json()
    assert [c["id"] for c in listed] == [second["id"], first["id"]]  # most recent activity first
    assert all(set(c) == CHAT_FIELDS for c in listed)
    archived = api.get("/api/v1/chats?status=ARCHIVED", headers=owner.headers).json()
    assert [c["id"] for c in archived] == [second["id"]]
    active = api.get("/api/v1/chats?status=ACTIVE", headers=owner.headers).json()
    assert [c["id"] for c in active] == [first["id"]]
    page = api.get("/api/v1/chats?skip=1&limit=1", headers=owner.headers).json()
    assert [c["id"] for c in page] == [first["id"]]


def test_update_chat_status(api, alice, make_user):
    chat = create_chat(api, alice, chat_type="GROUP")
    url = f"/api/v1/chats/{chat['id']}/status"
    uuid_id = chat_uuid(api, alice, chat)
    archived = api.patch(url, json={"status": "ARCHIVED"}, headers=alice.headers)
    assert archived.status_code == 200 and archived.json()["status"] == "ARCHIVED"
    assert api.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers).json()["status"] == "ARCHIVED"
    assert api.get(f"/api/v1/chat/chats/{uuid_id}", headers=alice.headers).status_code == 404  # 000 hides it
    again = api.patch(url, json={"status": "ARCHIVED"}, headers=alice.headers)
    assert again.status_code == 200 and again.json()["status"] == "ARCHIVED"
    restored = api.patch(url, json={"status": "ACTIVE"}, headers=alice.headers)
    assert restored.status_code == 200 and restored.json()["status"] == "ACTIVE"
    assert api.get(f"/api/v1/chat/chats/{uuid_id}", headers=alice.headers).status_code == 200

    bob, eve = make_user("bob"), make_user("eve")
    add_member(api, alice, chat, bob)
    member = api.patch(url, json={"status": "DELETED"}, headers=bob.headers)
    assert member.status_code == 403
    assert member.json()["detail"] == "Only the chat's owner or admins can change its status"
    assert api.patch(url, json={"status": "DELETED"}, headers=eve.headers).status_code == 403
    invalid = api.patch(url, json={"status": "GONE"}, headers=alice.headers)
    assert invalid.status_code == 400 and invalid.json()["detail"][0]["loc"] == ["body", "status"]
    assert api.patch(url, json={}, headers=alice.headers).status_code == 400

    deleted = api.patch(url, json={"status": "DELETED"}, headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "DELETED"
    for path in (f"/api/v1/chats/{chat['id']}", f"/api/v1/chats/{chat['id']}/messages",
                 f"/api/v1/chat/chats/{uuid_id}"):
        assert api.get(path, headers=alice.headers).status_code == 404, path
    assert api.patch(url, json={"status": "ACTIVE"}, headers=alice.headers).status_code == 404  # final
    assert chat["id"] not in [c["id"] for c in api.get("/api/v1/chats", headers=alice.headers).json()]
    assert uuid_id not in [c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()]


def test_only_the_owner_deletes_a_chat_admins_archive_it(api, alice, make_user):
    """Deleting is final and removes the chat for every member, on every surface: only its owner
    may, as 001, 002 and 004 delete; an admin archives and restores it."""
    chat = create_chat(api, alice, chat_type="GROUP")
    url = f"/api/v1/chats/{chat['id']}/status"
    carol = make_user("carol")
    add_member(api, alice, chat, carol, role="ADMIN")
    assert api.patch(url, json={"status": "ARCHIVED"}, headers=carol.headers).json()["status"] == "ARCHIVED"
    assert api.patch(url, json={"status": "ACTIVE"}, headers=carol.headers).json()["status"] == "ACTIVE"
    refused = api.patch(url, json={"status": "DELETED"}, headers=carol.headers)
    assert refused.status_code == 403 and refused.json() == {"detail": "Only the chat's owner can delete it"}
    assert api.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers).json()["status"] == "ACTIVE"


def test_chat_created_here_is_listed_by_the_chat_api(api, alice):
    chat = create_chat(api, alice, chat_type="SYSTEM")
    post(api, alice, chat["id"], "from 003")
    listed = api.get("/api/v1/chat/chats", headers=alice.headers).json()
    mine = next(c for c in listed if c["title"] == chat["title"])
    assert mine["chat_type"] == "CHANNEL" and mine["message_count"] == 1
    history = api.get(f"/api/v1/chat/chats/{mine['id']}", headers=alice.headers).json()
    assert [m["content"] for m in history["messages"]] == ["from 003"]
    assert history["messages"][0]["sender_id"] == alice["id"] and history["messages"][0]["message_type"] == "USER"


def test_chat_created_on_the_chat_api_is_listed_here(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=2)
    made = make_chat(alice, title=f"from 000 {uuid.uuid4().hex[:6]}", chat_type="GROUP")
    api.post(f"/api/v1/chat/chats/{made['id']}/messages", json={"content": "hi AI"}, headers=alice.headers)
    listed = api.get("/api/v1/chats", headers=alice.headers).json()
    chat = next(c for c in listed if c["title"] == made["title"])
    assert chat["chat_type"] == "GROUP" and chat["user_id"] == str(alice["user_id"]) and chat["rag_enabled"] is False
    url = f"/api/v1/chats/{chat['id']}/messages"
    messages = wait_for(lambda: (ms := api.get(url, headers=alice.headers).json())
                        and ms[-1]["status"] == "DELIVERED" and len(ms) == 2 and ms)
    user, reply = messages
    assert user["content"] == "hi AI" and user["is_user"] is True and user["user_id"] == str(alice["user_id"])
    assert reply["content"] == "t0 t1 " and reply["is_user"] is False and reply["user_id"] is None
    assert reply["message_type"] == "TEXT"
    for other_type, shown in (("DIRECT", "PERSONAL"), ("CHANNEL", "SYSTEM")):
        made = make_chat(alice, title=f"t {uuid.uuid4().hex[:6]}", chat_type=other_type)
        listed = api.get("/api/v1/chats", headers=alice.headers).json()
        assert next(c for c in listed if c["title"] == made["title"])["chat_type"] == shown



def test_a_change_racing_a_delete_does_not_bring_the_chat_back(api, alice):
    chat = create_chat(api, alice, chat_type="GROUP")
    with runtime.session() as db:  # a PATCH to ARCHIVED that has read the chat ACTIVE and passed its checks
        loaded = db.get(Chat, chat["id"])
        member = db.scalar(select(Participant).where(Participant.chat_id == loaded.id,
                                                     Participant.user_id == loaded.owner_id))
        deleted = api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "DELETED"}, headers=alice.headers)
        assert deleted.status_code == 200 and deleted.json()["status"] == "DELETED"
        with pytest.raises(NotFound):
            chats.change_status(db, loaded, member, "ARCHIVED")
    with runtime.session() as db:
        assert db.get(Chat, chat["id"]).status == "DELETED"
    assert api.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers).status_code == 404
