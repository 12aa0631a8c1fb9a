"""The chats API's WebSocket (003): the chat's events with integer ids, from either surface."""
from __future__ import annotations

import time
from typing import Callable

import pytest

from tests.admin.accounts import promote, set_active
from tests.api.test_chats_v1 import add_member, chat_uuid, create_chat, post
from tests.conftest import Socket, close_all, socket_opener
from workers import runtime


@pytest.fixture
def connect_v1(server: str) -> Callable[..., Socket]:
    """Open a WebSocket on /api/v1/chats/{chat_id}/ws (closed after the test)."""
    open_socket, opened = socket_opener(server, "/api/v1/chats/{chat_id}/ws")
    yield open_socket
    close_all(opened)


def close_code(ws: Socket) -> int:
    ws.ws.settimeout(5)
    opcode, data = ws.ws.recv_data()
    assert opcode == 8, "expected a close frame before any event"
    return int.from_bytes(data[:2], "big")


def test_status_and_reaction_events(api, alice, make_user, connect_v1):
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    ws = connect_v1(chat["id"], bob["access_token"])
    welcome = ws.next()
    assert welcome["type"] == "welcome"
    assert welcome["chat_id"] == chat["id"] and welcome["user_id"] == str(bob["user_id"])

    message = post(api, alice, chat["id"], "hello bob", message_metadata={"k": 1})
    new = ws.next()
    assert new["type"] == "new_message" and new["chat_id"] == chat["id"] and new["event_id"]
    assert new["message"] == message

    api.patch(f"/api/v1/messages/{message['id']}/status", json={"status": "READ"}, headers=bob.headers)
    changed = ws.next()
    assert changed["type"] == "message_status_changed"
    assert {k: changed[k] for k in ("chat_id", "message_id", "status", "previous_status", "user_id")} == {
        "chat_id": chat["id"], "message_id": message["id"], "status": "READ", "previous_status": "SENT",
        "user_id": str(bob["user_id"])}
    assert changed["timestamp"] and changed["event_id"] and "int_ids" not in changed

    reactions_url = f"/api/v1/messages/{message['id']}/reactions"
    api.post(reactions_url, json={"reaction": "👍"}, headers=alice.headers)
    api.post(reactions_url, json={"reaction": "👍"}, headers=alice.headers)  # no second event
    api.delete(f"{reactions_url}/👍", headers=alice.headers)
    added, removed = ws.next(), ws.next()
    for event, kind in ((added, "reaction_added"), (removed, "reaction_removed")):
        assert event["type"] == kind and event["reaction"] == "👍"
        assert event["chat_id"] == chat["id"] and event["message_id"] == message["id"]
        assert event["user_id"] == str(alice["user_id"])

    api.post(f"/api/v1/chat/chats/{chat_uuid(api, alice, chat)}/typing", headers=alice.headers)
    ws.send({"type": "ping"})
    assert ws.next()["type"] == "pong"  # the typing indicator is not an event of this surface


def test_chat_api_messages_and_replies_arrive_as_new_messages(api, alice, make_chat, connect_v1, fake_upstream):
    fake_upstream.configure(tokens=3)
    made = make_chat(alice, title="mixed surfaces")
    chat = next(c for c in api.get("/api/v1/chats", headers=alice.headers).json() if c["title"] == made["title"])
    ws = connect_v1(chat["id"], alice["access_token"])
    ws.next()
    api.post(f"/api/v1/chat/chats/{made['id']}/messages", json={"content": "hi AI"}, headers=alice.headers)
    asked, answered = ws.next(), ws.next()
    assert asked["type"] == "new_message" and asked["message"]["content"] == "hi AI"
    assert asked["message"]["is_user"] is True and isinstance(asked["message"]["id"], int)
    assert answered["type"] == "new_message" and answered["message"]["is_user"] is False
    assert answered["message"]["content"] == "t0 t1 t2 " and answered["message"]["status"] == "DELIVERED"
    assert answered["message"]["id"] > asked["message"]["id"]


def test_status_frame_from_the_client(api, alice, connect_v1):
    chat, other = create_chat(api, alice), create_chat(api, alice)
    message = post(api, alice, chat["id"], "mark me")
    elsewhere = post(api, alice, other["id"], "not here")
    ws = connect_v1(chat["id"], alice["access_token"])
    ws.next()
    ws.send({"type": "message_status", "message_id": message["id"], "status": "DELIVERED"})
    frames = [ws.next(), ws.next()]
    ack = next(f for f in frames if f["type"] == "message_status_ack")
    assert ack["message_id"] == message["id"] and ack["status"] == "DELIVERED"
    assert any(f["type"] == "message_status_changed" and f["status"] == "DELIVERED" for f in frames)
    for frame, fragment in (
        ({"message_id": message["id"], "status": "SENT"}, "from DELIVERED to SENT"),
        ({"message_id": message["id"], "status": "LOST"}, "needs an integer message_id"),
        ({"status": "READ"}, "needs an integer message_id"),
        ({"message_id": -10**20, "status": "READ"}, "needs an integer message_id"),  # SQLite cannot compare it
        ({"message_id": True, "status": "READ"}, "needs an integer message_id"),  # not message 1
        ({"message_id": str(message["id"]), "status": "READ"}, "needs an integer message_id"),
        ({"message_id": elsewhere["id"], "status": "READ"}, "not found in this chat"),
        ({"message_id": 987654321, "status": "READ"}, "Message not found"),
    ):
        ws.send({"type": "message_status", **frame})
        error = ws.next()
        assert error["type"] == "error" and error["error_code"] == "status_failed" and fragment in error["error"]
    listed = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()
    assert listed[0]["status"] == "DELIVERED"


def test_resume_replays_in_this_surfaces_shape(api, alice, connect_v1):
    chat = create_chat(api, alice)
    ws = connect_v1(chat["id"], alice["access_token"])
    ws.next()
    first = post(api, alice, chat["id"], "one")
    seen = ws.next()
    ws.close()
    post(api, alice, chat["id"], "two")
    api.patch(f"/api/v1/messages/{first['id']}/status", json={"status": "DELIVERED"}, headers=alice.headers)
    time.sleep(0.1)
    again = connect_v1(chat["id"], alice["access_token"], query=f"last_event_id={seen['event_id']}")
    assert again.next()["type"] == "welcome"
    missed = [again.next(), again.next()]
    assert [e["type"] for e in missed] == ["new_message", "message_status_changed"]
    assert missed[0]["message"]["content"] == "two" and missed[1]["message_id"] == first["id"]


def test_socket_access(api, alice, make_user, connect_v1):
    chat = create_chat(api, alice)
    assert close_code(connect_v1(chat["id"], "not-a-token")) == 4401
    assert close_code(connect_v1(chat["id"])) == 4401
    assert close_code(connect_v1(chat["id"], make_user("eve")["access_token"])) == 4403
    assert close_code(connect_v1(987654321, alice["access_token"])) == 4404
    assert close_code(connect_v1(chat["id"], alice["access_token"], query="last_event_id=abc")) == 4400
    header = connect_v1(chat["id"], header=[f"Authorization: Bearer {alice['access_token']}"])
    assert header.next()["type"] == "welcome"

    api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "ARCHIVED"}, headers=alice.headers)
    assert connect_v1(chat["id"], alice["access_token"]).next()["type"] == "welcome"
    api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "DELETED"}, headers=alice.headers)
    assert close_code(connect_v1(chat["id"], alice["access_token"])) == 4404


def test_frames_this_surface_does_not_serve(api, alice, connect_v1):
    chat = create_chat(api, alice)
    ws = connect_v1(chat["id"], alice["access_token"])
    ws.next()
    ws.ws.send("not json")
    ws.send({"type": "typing"})  # the chat API's frames are not this socket's
    ws.send({"type": "resume", "last_event_id": "later"})
    ws.send({"type": "heartbeat", "timestamp": "2024-01-01T12:00:00Z"})
    frames = [ws.next() for _ in range(4)]
    assert [(f["type"], f.get("error_code")) for f in frames] == [
        ("error", "invalid_message"), ("error", "unknown_type"), ("error", "invalid_cursor"), ("pong", None)]
    assert frames[-1]["timestamp"] == "2024-01-01T12:00:00Z"



def test_open_sockets_close_when_their_chat_is_deleted(api, alice, connect, connect_v1):
    """Deleted, a chat is gone from every surface: the sockets open on it close 4404, as a new one is refused."""
    chat = create_chat(api, alice, chat_type="GROUP")
    chat_api = connect(chat_uuid(api, alice, chat), alice["access_token"])
    here = connect_v1(chat["id"], alice["access_token"])
    chat_api.next(), here.next()
    assert api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "DELETED"},
                     headers=alice.headers).status_code == 200
    assert close_code(chat_api) == close_code(here) == 4404


def test_archiving_closes_the_chats_sockets_here_not_on_the_chats_api(api, alice, connect, connect_v1):
    """The chat API hides an archived chat (REST 404, a new socket refused 4404): its open sockets
    close 4404 too, whichever surface archives it (003's status, 002's is_archived). The chats API
    (003) shows archived chats, and its socket stays. Once restored, a socket resuming from before
    the archiving is not closed by it."""
    chat = create_chat(api, alice, chat_type="GROUP")
    uuid_id = chat_uuid(api, alice, chat)
    archive = {"003": lambda: api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "ARCHIVED"},
                                        headers=alice.headers),
               "002": lambda: api.put(f"/chat/conversations/{chat['id']}", json={"is_archived": True},
                                      headers=alice.headers)}
    v1 = connect_v1(chat["id"], alice["access_token"])
    v1.next()
    for surface, request in archive.items():
        ws = connect(uuid_id, alice["access_token"])
        cursor = ws.next()["last_event_id"]
        assert request().status_code == 200, surface
        ws.ws.settimeout(5)
        opcode, data = ws.ws.recv_data()
        assert (surface, opcode, int.from_bytes(data[:2], "big"), data[2:]) == (surface, 8, 4404, b"Chat not found")
        assert api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "ACTIVE"},
                         headers=alice.headers).status_code == 200
        resumed = connect(uuid_id, alice["access_token"], query=f"last_event_id={cursor}")
        assert resumed.next()["type"] == "welcome"
        post(api, alice, chat["id"], f"after {surface}'s archiving")
        assert resumed.until("new_message")[-1]["message"]["content"] == f"after {surface}'s archiving"
    assert [e["message"]["content"] for e in v1.until("new_message") + v1.until("new_message")
            if e["type"] == "new_message"] == ["after 003's archiving", "after 002's archiving"]


def test_a_removed_participants_sockets_close_4403_and_the_others_see_the_event(api, alice, make_user, connect,
                                                                               connect_v1):
    """Removed, a user is refused the chat as any non-participant: their open sockets on both
    surfaces close 4403 (as a new one is refused); the other members' stay and get
    `participant_removed`. A socket of the user added back, replaying the removal, stays open."""
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    uuid_id = chat_uuid(api, alice, chat)
    watching, his, his_v1 = (connect(uuid_id, alice["access_token"]), connect(uuid_id, bob["access_token"]),
                             connect_v1(chat["id"], bob["access_token"]))
    cursor = [ws.next() for ws in (watching, his, his_v1)][1]["last_event_id"]
    assert api.delete(f"/api/v1/chat/chats/{uuid_id}/participants/{bob['id']}",
                      headers=alice.headers).status_code == 200
    for ws in (his, his_v1):
        ws.ws.settimeout(5)
        opcode, data = ws.ws.recv_data()
        assert (opcode, int.from_bytes(data[:2], "big"), data[2:]) == (8, 4403, b"Access denied to this chat")
    event = watching.next()
    assert event["type"] == "participant_removed" and event["event_id"] and event["timestamp"].endswith("Z")
    assert (event["chat_id"], event["user_id"]) == (uuid_id, bob["id"])
    watching.send({"type": "ping"})
    assert watching.next()["type"] == "pong"

    add_member(api, alice, chat, bob)
    resumed = connect(uuid_id, bob["access_token"], query=f"last_event_id={cursor}")
    assert resumed.next()["type"] == "welcome"
    assert [e["type"] for e in resumed.until("participant_added")] == ["participant_removed", "participant_added"]


def test_deactivating_a_user_closes_their_sockets_here_too(api, alice, make_user, connect_v1, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    admin = promote(make_user("admin"))
    ws = connect_v1(create_chat(api, alice)["id"], alice["access_token"])
    assert ws.next()["type"] == "welcome"
    set_active(api, admin, alice, False)
    ws.ws.settimeout(5)
    opcode, data = ws.ws.recv_data()
    assert opcode == 8 and int.from_bytes(data[:2], "big") == 4401 and data[2:] == b"Account deactivated"
