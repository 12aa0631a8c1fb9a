"""The chat API's REST endpoints (000, endpoints 1-5 and 7) with documented shapes and errors."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from models import Chat, Participant, User
from models.message import INTERNAL_META
from tests.api.rag_helpers import send
from tests.conftest import sent_while_writing, wait_for
from web.services import chats, replies
from workers import events, runtime

CHAT_FIELDS = {"id", "numeric_id", "title", "description", "chat_type", "ai_model", "ai_persona", "message_count",
               "last_activity_at", "created_at", "is_private", "tags"}
MESSAGE_FIELDS = {"id", "chat_id", "sender_id", "content", "message_type", "ai_model_used", "tokens_used",
                  "processing_time_ms", "status", "created_at", "is_edited"}


def test_create_chat_defaults_and_shape(api, alice):
    response = api.post("/api/v1/chat/chats", json={"title": "My AI Chat"}, headers=alice.headers)
    assert response.status_code == 200
    chat = response.json()
    assert set(chat) == CHAT_FIELDS
    assert chat["chat_type"] == "DIRECT" and chat["ai_model"] == "gpt-3.5-turbo" and chat["message_count"] == 0
    assert chat["is_private"] is False and chat["last_activity_at"].endswith("Z")


def test_create_chat_validation(api, alice):
    cases = [
        ({"title": ""}, "title"), ({"title": "   "}, "title"), ({"title": "x" * 201}, "title"), ({}, "title"),
        ({"title": "t", "description": "d" * 1001}, "description"),
        ({"title": "t", "chat_type": "PERSONAL"}, "chat_type"),
        ({"title": "t", "temperature": 1.5}, "temperature"),
        ({"title": "t", "max_tokens": 0}, "max_tokens"), ({"title": "t", "max_tokens": 32001}, "max_tokens"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/chat/chats", json=body, headers=alice.headers)
        assert response.status_code == 422, body
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", field] and detail[0]["msg"] and detail[0]["type"]
    # Each tag is bounded too: one tag of ~1 MB made every chat list carrying it that large.
    for tags in (["x" * 51], ["ok", ""]):
        response = api.post("/api/v1/chat/chats", json={"title": "t", "tags": tags}, headers=alice.headers)
        assert response.status_code == 422, tags
        assert response.json()["detail"][0]["loc"] == ["body", "tags", len(tags) - 1]


def test_list_chats_by_last_activity_with_paging(api, alice, make_chat, fake_upstream):
    first, second, third = (make_chat(alice, title=f"c{i}") for i in range(3))
    api.post(f"/api/v1/chat/chats/{first['id']}/messages", json={"content": "bump"}, headers=alice.headers)
    listed = api.get("/api/v1/chat/chats", headers=alice.headers).json()
    assert [c["id"] for c in listed[:3]] == [first["id"], third["id"], second["id"]]
    page = api.get("/api/v1/chat/chats?limit=1&offset=1", headers=alice.headers).json()
    assert [c["id"] for c in page] == [third["id"]]
    assert api.get("/api/v1/chat/chats?limit=0", headers=alice.headers).status_code == 422
    assert api.get("/api/v1/chat/chats?offset=-1", headers=alice.headers).status_code == 422


def test_history_with_limit_offset_and_participant_count(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=1)
    chat = make_chat(alice)
    for text in ("one", "two"):
        api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": text}, headers=alice.headers)
        wait_for(lambda: api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers)
                 .json()["messages"][-1]["status"] == "DELIVERED")
    body = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()
    assert body["participant_count"] == 1 and body["chat"]["message_count"] == 4
    assert [m["content"] for m in body["messages"]] == ["one", "t0 ", "two", "t0 "]
    assert all(set(m) == MESSAGE_FIELDS for m in body["messages"])
    ai = body["messages"][1]
    assert ai["message_type"] == "AI" and ai["sender_id"] is None and ai["ai_model_used"] == "gpt-3.5-turbo"
    older = api.get(f"/api/v1/chat/chats/{chat['id']}?limit=2&offset=2", headers=alice.headers).json()
    assert [m["content"] for m in older["messages"]] == ["one", "t0 "]
    assert api.get(f"/api/v1/chat/chats/{chat['id']}?limit=1001", headers=alice.headers).status_code == 422



def test_a_line_typed_as_the_ai_shows_no_sender(api, alice, make_chat, connect):
    """000 shows AI messages with `sender_id: null` (the document's examples), as 003 shows
    `user_id: null`: also the lines an owner typed as the AI (002's agent lines, 001's history),
    in the history and on the socket."""
    chat = make_chat(alice, chat_type="GROUP")
    conversation_id = next(c["id"] for c in api.get("/api/v1/chats", headers=alice.headers).json()
                           if c["title"] == chat["title"])
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    added = api.post(f"/chat/conversations/{conversation_id}/messages",
                     json={"content": "Hello! How can I help?", "sender_type": "agent"}, headers=alice.headers)
    assert added.status_code == 201
    announced = ws.until("new_message")[-1]["message"]
    shown = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()["messages"][-1]
    assert announced == shown
    assert (shown["content"], shown["message_type"], shown["sender_id"]) == ("Hello! How can I help?", "AI", None)

def test_access_rules(api, alice, make_user, make_chat):
    chat = make_chat(alice)
    eve = make_user("eve")
    for method, path in (("get", ""), ("get", "/participants"), ("post", "/typing")):
        response = getattr(api, method)(f"/api/v1/chat/chats/{chat['id']}{path}", headers=eve.headers)
        assert response.status_code == 403 and response.json()["detail"]
    response = api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hi"}, headers=eve.headers)
    assert response.status_code == 403
    unknown = api.get("/api/v1/chat/chats/123e4567-e89b-12d3-a456-426614174000", headers=alice.headers)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "Chat not found"


def test_upper_case_uuids_in_paths_name_the_same_chat(api, alice, make_chat, connect):
    chat = make_chat(alice)
    upper = chat["id"].upper()
    loaded = api.get(f"/api/v1/chat/chats/{upper}", headers=alice.headers)
    assert loaded.status_code == 200 and loaded.json()["chat"]["id"] == chat["id"]
    assert api.post(f"/api/v1/chat/chats/{upper}/messages", json={"content": "hi"},
                    headers=alice.headers).status_code == 200
    reply = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()["messages"][-1]
    stop = api.post(f"/api/v1/chat/chats/{upper}/messages/{reply['id'].upper()}/stop", headers=alice.headers)
    assert stop.status_code == 200 and stop.json()["message_id"] == reply["id"]
    assert connect(upper, alice["access_token"]).next()["chat_id"] == chat["id"]


def test_send_message_rules(api, alice, make_chat):
    chat = make_chat(alice)
    url = f"/api/v1/chat/chats/{chat['id']}/messages"
    empty = api.post(url, json={"content": "   "}, headers=alice.headers)
    assert empty.status_code == 400 and empty.json()["detail"] == "Message content cannot be empty"
    too_long = api.post(url, json={"content": "x" * 50001}, headers=alice.headers)
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["body", "content"]
    assert api.post(url, json={"content": "x", "message_type": "AI"}, headers=alice.headers).status_code == 403
    bad_parent = api.post(url, json={"content": "x", "reply_to_id": "nope"}, headers=alice.headers)
    assert bad_parent.status_code == 422
    first = api.post(url, json={"content": "parent", "message_metadata": {"source": "web_app"}},
                     headers=alice.headers).json()
    assert set(first) == MESSAGE_FIELDS and first["status"] == "DELIVERED" and first["message_type"] == "USER"
    child = api.post(url, json={"content": "child", "reply_to_id": first["id"]}, headers=alice.headers)
    assert child.status_code == 200
    shouted = api.post(url, json={"content": "child", "reply_to_id": first["id"].upper()}, headers=alice.headers)
    assert shouted.status_code == 200  # a UUID names the same message in either case
    system = api.post(url, json={"content": "be nice", "message_type": "SYSTEM"}, headers=alice.headers)
    assert system.status_code == 200 and system.json()["message_type"] == "SYSTEM"


def test_a_message_not_kept_cannot_be_replied_to(api, alice, make_chat, fake_upstream):
    """A hidden message (save_to_history: false) is shown by no surface, so no thread hangs from it:
    003 refuses it as a parent and would answer 404 for its thread."""
    fake_upstream.configure(tokens=1)
    chat = make_chat(alice)
    secret = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message",
                      json={"message": "off the record", "save_to_history": False}, headers=alice.headers)
    assert secret.status_code == 200, secret.text
    hidden = secret.json()["data"]["user_message"]["id"]
    url = f"/api/v1/chat/chats/{chat['id']}/messages"
    child = api.post(url, json={"content": "child", "reply_to_id": hidden}, headers=alice.headers)
    assert child.status_code == 422 and child.json()["detail"][0]["loc"] == ["body", "reply_to_id"]
    assert api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()["messages"] == []


def test_send_message_refuses_pipeline_metadata(api, alice, make_user, make_chat):
    # `requested_by` is read as an AI message's author by the RAG API: a client must not set it.
    bob = make_user("bob")
    chat = make_chat(alice)
    url = f"/api/v1/chat/chats/{chat['id']}/messages"
    for key in sorted(INTERNAL_META):
        sent = api.post(url, json={"content": "x", "message_type": "SYSTEM",
                                   "message_metadata": {key: bob["id"], "note": 1}}, headers=alice.headers)
        assert sent.status_code == 400, key
        assert sent.json() == {"detail": f"message_metadata cannot set {key}: these keys are the server's"}
    assert api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()["messages"] == []


def test_participants_and_permissions(api, alice, make_user, make_chat):
    bob, carol = make_user("bob"), make_user("carol")
    channel = make_chat(alice, chat_type="CHANNEL")
    url = f"/api/v1/chat/chats/{channel['id']}/participants"
    added = api.post(url, json={"user_id": bob["id"].upper()}, headers=alice.headers)  # either case names bob
    assert added.status_code == 201 and added.json()["role"] == "MEMBER" and added.json()["user_id"] == bob["id"]
    assert added.json()["can_send_messages"] is False  # channel members read unless allowed
    denied = api.post(f"/api/v1/chat/chats/{channel['id']}/messages", json={"content": "hi"}, headers=bob.headers)
    assert denied.status_code == 403 and denied.json()["detail"] == "Cannot send messages to this chat"
    typing = api.post(f"/api/v1/chat/chats/{channel['id']}/typing", headers=bob.headers)
    assert typing.status_code == 403 and typing.json()["detail"] == "Cannot send messages to this chat"
    assert api.post(url, json={"user_id": bob["id"]}, headers=alice.headers).status_code == 409
    assert api.post(url, json={"user_id": carol["id"]}, headers=bob.headers).status_code == 403
    assert api.post(url, json={"user_id": "no-such-user"}, headers=alice.headers).status_code == 404
    assert api.post(url, json={"user_id": carol["id"], "role": "OWNER"}, headers=alice.headers).status_code == 422

    listed = api.get(url, headers=bob.headers).json()
    assert listed["chat_id"] == channel["id"] and listed["total_participants"] == 2
    owner = listed["participants"][0]
    assert owner["user_id"] == alice["id"] and owner["role"] == "OWNER"
    assert {"user_id", "role", "joined_at", "can_send_messages", "can_upload_files", "message_count",
            "last_read_at"} <= set(owner)

    direct = make_chat(alice)
    direct_url = f"/api/v1/chat/chats/{direct['id']}/participants"
    assert api.post(direct_url, json={"user_id": bob["id"]}, headers=alice.headers).status_code == 201
    third = api.post(direct_url, json={"user_id": carol["id"]}, headers=alice.headers)
    assert third.status_code == 400 and "DIRECT" in third.json()["detail"]


def test_deactivated_users_are_left_out_of_the_participants(api, alice, make_user, make_chat):
    """The participants list is of the chat's "active participants" (the document): a member whose
    account an admin deactivated is not listed nor counted (here or in the chat's
    participant_count), but still holds their place in a DIRECT chat, should they come back."""
    bob, carol, dave = make_user("bob"), make_user("carol"), make_user("dave")
    group, direct = make_chat(alice, chat_type="GROUP"), make_chat(alice)
    for chat, members in ((group, (bob, carol)), (direct, (bob,))):
        for member in members:
            added = api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": member["id"]},
                             headers=alice.headers)
            assert added.status_code == 201
    with runtime.session() as db:
        db.execute(User.__table__.update().where(User.__table__.c.uuid == bob["id"]).values(is_active=False))
        db.commit()
    listed = api.get(f"/api/v1/chat/chats/{group['id']}/participants", headers=alice.headers).json()
    assert [p["user_id"] for p in listed["participants"]] == [alice["id"], carol["id"]]
    assert listed["total_participants"] == 2
    assert api.get(f"/api/v1/chat/chats/{group['id']}", headers=alice.headers).json()["participant_count"] == 2
    third = api.post(f"/api/v1/chat/chats/{direct['id']}/participants", json={"user_id": dave["id"]},
                     headers=alice.headers)
    assert third.status_code == 400 and "DIRECT" in third.json()["detail"]


def test_sessions_and_conversations_are_group_chats_that_take_more_members(api, alice, make_user, fake_upstream):
    """001, 002 and 004 have no chat types and share their chats with any number of members
    (added here): their chats are GROUP chats, not DIRECT ones limited to two."""
    fake_upstream.configure(tokens=1)
    bob, carol = make_user("bob"), make_user("carol")
    api.post("/v1/chat/stream", json={"model": "gpt-4", "stream": False,
                                      "messages": [{"role": "user", "content": "Made on 001"}]}, headers=alice.headers)
    api.post("/chat/conversations", json={"title": "Made on 002"}, headers=alice.headers)
    send(api, alice, "Made on 004")
    made = {chat["title"]: chat["id"] for chat in api.get("/api/v1/chat/chats", headers=alice.headers).json()}
    assert sorted(made) == ["Made on 001", "Made on 002", "Made on 004"]
    for title, chat_id in made.items():
        url = f"/api/v1/chat/chats/{chat_id}/participants"
        added = [api.post(url, json={"user_id": user["id"]}, headers=alice.headers) for user in (bob, carol)]
        assert (title, [a.status_code for a in added]) == (title, [201, 201]), added[-1].text
        assert api.get(f"/api/v1/chat/chats/{chat_id}", headers=carol.headers).json()["chat"]["chat_type"] == "GROUP"
    assert [c["chat_type"] for c in api.get("/api/v1/chats", headers=carol.headers).json()] == ["GROUP"] * 3


def add_at_once(api, owner, url, user_ids):
    """POST each user to `url` from its own thread, all released together; the statuses in order."""
    start = threading.Barrier(len(user_ids))

    def add(user_id):
        start.wait()
        return api.post(url, json={"user_id": user_id}, headers=owner.headers).status_code

    with ThreadPoolExecutor(len(user_ids)) as pool:
        return list(pool.map(add, user_ids))


def test_concurrent_adds_keep_participants_unique_and_direct_chats_at_two(api, alice, make_user, make_chat):
    bob = make_user("bob")
    group = make_chat(alice, chat_type="GROUP")
    url = f"/api/v1/chat/chats/{group['id']}/participants"
    assert sorted(add_at_once(api, alice, url, [bob["id"]] * 6)) == [201] + [409] * 5
    assert api.get(url, headers=alice.headers).json()["total_participants"] == 2

    direct = make_chat(alice)
    url = f"/api/v1/chat/chats/{direct['id']}/participants"
    others = [make_user("guest")["id"] for _ in range(6)]
    assert sorted(add_at_once(api, alice, url, others)) == [201] + [400] * 5
    assert api.get(url, headers=alice.headers).json()["total_participants"] == 2


def test_an_add_racing_the_chats_archiving_is_404_and_adds_nobody(api, alice, make_user, make_chat):
    """An add that read the chat while its archiving (on 002 or 003) was committing: 404 as for an
    add sent after it (this API hides archived chats), and the user is not a member once it is restored."""
    bob = make_user("bob")
    group = make_chat(alice, chat_type="GROUP")
    url = f"/api/v1/chat/chats/{group['id']}/participants"
    chat_row = Chat.__table__.update().where(Chat.__table__.c.uuid == group["id"])
    raced = sent_while_writing(chat_row.values(status="ARCHIVED"),
                               lambda: api.post(url, json={"user_id": bob["id"]}, headers=alice.headers))
    assert (raced.status_code, raced.json()) == (404, {"detail": "Chat not found"})
    with runtime.session() as db:
        db.execute(chat_row.values(status="ACTIVE"))
        db.commit()
    assert [p["user_id"] for p in api.get(url, headers=alice.headers).json()["participants"]] == [alice["id"]]


def add_members(api, owner, chat, *members, role="MEMBER"):
    for member in members:
        added = api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": member["id"], "role": role},
                         headers=owner.headers)
        assert added.status_code == 201, added.text


def remove(api, actor, chat, user_id):
    return api.delete(f"/api/v1/chat/chats/{chat['id']}/participants/{user_id}", headers=actor.headers)


def test_a_participant_leaves_keeping_their_messages_and_may_be_added_back(api, alice, make_user, make_chat,
                                                                          fake_upstream):
    fake_upstream.configure(tokens=1)
    bob = make_user("bob")
    group = make_chat(alice, chat_type="GROUP")
    add_members(api, alice, group, bob)
    sent = api.post(f"/api/v1/chat/chats/{group['id']}/messages", json={"content": "bye all"}, headers=bob.headers)
    assert sent.status_code == 200
    left = remove(api, bob, group, bob["id"].upper())  # either case names bob
    assert (left.status_code, left.json()) == (200, {"chat_id": group["id"], "user_id": bob["id"], "removed": True})
    for path in ("", "/participants"):
        refused = api.get(f"/api/v1/chat/chats/{group['id']}{path}", headers=bob.headers)
        assert (refused.status_code, refused.json()) == (403, {"detail": "Access denied to this chat"})
    url = f"/api/v1/chat/chats/{group['id']}/participants"
    assert [p["user_id"] for p in api.get(url, headers=alice.headers).json()["participants"]] == [alice["id"]]
    history = api.get(f"/api/v1/chat/chats/{group['id']}", headers=alice.headers).json()
    assert [m["sender_id"] for m in history["messages"] if m["content"] == "bye all"] == [bob["id"]]
    assert history["participant_count"] == 1
    assert remove(api, bob, group, bob["id"]).status_code == 403  # no longer a participant
    add_members(api, alice, group, bob)
    assert api.get(f"/api/v1/chat/chats/{group['id']}", headers=bob.headers).status_code == 200


def test_the_owner_cannot_leave(api, alice, make_chat):
    chat = make_chat(alice)
    refused = remove(api, alice, chat, alice["id"])
    assert refused.status_code == 400
    assert refused.json() == {"detail": "The chat's owner cannot leave it; delete or archive the chat instead"}
    assert api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).status_code == 200


def test_who_may_remove_whom(api, alice, make_user, make_chat):
    """The owner removes anyone else; an admin removes members only; a member removes nobody else."""
    admin, other_admin = make_user("admin"), make_user("admin")
    bob, carol, dave = make_user("bob"), make_user("carol"), make_user("dave")
    group = make_chat(alice, chat_type="GROUP")
    add_members(api, alice, group, admin, other_admin, role="ADMIN")
    add_members(api, alice, group, bob, carol, dave)
    for actor, target in ((bob, carol), (bob, admin), (bob, alice)):
        refused = remove(api, actor, group, target["id"])
        assert (refused.status_code, refused.json()) == (
            403, {"detail": "Only the chat's owner or admins can remove other participants"})
    for target in (other_admin, alice):
        refused = remove(api, admin, group, target["id"])
        assert (refused.status_code, refused.json()) == (
            403, {"detail": "Admins can remove members only, not the chat's owner or other admins"})
    assert remove(api, admin, group, carol["id"]).status_code == 200
    assert remove(api, alice, group, other_admin["id"]).status_code == 200
    assert remove(api, alice, group, dave["id"]).status_code == 200
    listed = api.get(f"/api/v1/chat/chats/{group['id']}/participants", headers=alice.headers).json()
    assert [p["user_id"] for p in listed["participants"]] == [alice["id"], admin["id"], bob["id"]]


def test_removing_someone_who_is_not_a_participant_is_404(api, alice, make_user, make_chat):
    bob, eve = make_user("bob"), make_user("eve")
    chat = make_chat(alice, chat_type="GROUP")
    for user_id in (bob["id"], "123e4567-e89b-12d3-a456-426614174000", "no-such-user"):
        missing = remove(api, alice, chat, user_id)
        assert (missing.status_code, missing.json()) == (404, {"detail": "Participant not found"})
    outsider = remove(api, eve, chat, alice["id"])
    assert (outsider.status_code, outsider.json()) == (403, {"detail": "Access denied to this chat"})
    unknown = remove(api, alice, {"id": "123e4567-e89b-12d3-a456-426614174000"}, alice["id"])
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Chat not found"})


def test_a_removal_racing_the_chats_archiving_is_404_and_removes_nobody(api, alice, make_user, make_chat):
    bob = make_user("bob")
    group = make_chat(alice, chat_type="GROUP")
    add_members(api, alice, group, bob)
    chat_row = Chat.__table__.update().where(Chat.__table__.c.uuid == group["id"])
    raced = sent_while_writing(chat_row.values(status="ARCHIVED"), lambda: remove(api, alice, group, bob["id"]))
    assert (raced.status_code, raced.json()) == (404, {"detail": "Chat not found"})
    with runtime.session() as db:
        db.execute(chat_row.values(status="ACTIVE"))
        db.commit()
    listed = api.get(f"/api/v1/chat/chats/{group['id']}/participants", headers=alice.headers).json()
    assert [p["user_id"] for p in listed["participants"]] == [alice["id"], bob["id"]]


def changes_to_an_admin(group: dict, admin) -> tuple[Any, Any, Any]:
    """Statements another transaction runs while a request of `admin` waits: the chat's lock (a
    no-op UPDATE), then the admin's demotion or removal."""
    with runtime.session() as db:
        chat_id = db.scalar(select(Chat.id).where(Chat.uuid == group["id"]))
        admin_id = db.scalar(select(User.id).where(User.uuid == admin["id"]))
    chat_row, members = Chat.__table__, Participant.__table__
    lock = chat_row.update().where(chat_row.c.id == chat_id).values(updated_at=chat_row.c.updated_at)
    admins_row = members.c.chat_id == chat_id, members.c.user_id == admin_id
    return lock, members.update().where(*admins_row).values(role="MEMBER"), members.delete().where(*admins_row)


def test_a_removal_checks_the_actors_role_as_read_under_the_chats_lock(api, alice, make_user, make_chat):
    """An admin demoted, or removed, while their removal waits for the chat's lock (which every
    change to its participants holds) is refused as a removal sent after that change: the actor's
    role is read under the lock, not before it, and nobody is removed."""
    admin, bob = make_user("admin"), make_user("bob")
    group = make_chat(alice, chat_type="GROUP")
    add_members(api, alice, group, admin, role="ADMIN")
    add_members(api, alice, group, bob)
    lock, demoting, removing = changes_to_an_admin(group, admin)
    for change, refusal in ((demoting, "Only the chat's owner or admins can remove other participants"),
                            (removing, "Access denied to this chat")):
        raced = sent_while_writing([lock, change], lambda: remove(api, admin, group, bob["id"]))
        assert (raced.status_code, raced.json()) == (403, {"detail": refusal})
    listed = api.get(f"/api/v1/chat/chats/{group['id']}/participants", headers=alice.headers).json()
    assert [p["user_id"] for p in listed["participants"]] == [alice["id"], bob["id"]]


def test_an_add_checks_the_actors_role_as_read_under_the_chats_lock(api, alice, make_user, make_chat):
    """As a removal: an admin demoted, or removed, while their add waits for the chat's lock is
    refused as an add sent after that change, and nobody is added."""
    admin, carol = make_user("admin"), make_user("carol")
    group = make_chat(alice, chat_type="GROUP")
    add_members(api, alice, group, admin, role="ADMIN")
    lock, demoting, removing = changes_to_an_admin(group, admin)
    for change, refusal in ((demoting, "Only the chat's owner or admins can add participants"),
                            (removing, "Access denied to this chat")):
        raced = sent_while_writing([lock, change], lambda: api.post(
            f"/api/v1/chat/chats/{group['id']}/participants", json={"user_id": carol["id"], "role": "MEMBER"},
            headers=admin.headers))
        assert (raced.status_code, raced.json()) == (403, {"detail": refusal})
    listed = api.get(f"/api/v1/chat/chats/{group['id']}/participants", headers=alice.headers).json()
    assert carol["id"] not in [p["user_id"] for p in listed["participants"]]


def test_unknown_route_and_method_use_detail_body(api, alice):
    assert api.get("/api/v1/chat/nowhere", headers=alice.headers).json()["detail"]
    wrong = api.delete("/api/v1/chat/chats", headers=alice.headers)
    assert wrong.status_code == 405 and wrong.json()["detail"]


def test_cors_for_browser_frontends(api):
    preflight = api.options("/api/v1/chat/chats", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:3000")


def test_a_message_that_could_not_be_announced_still_gets_its_reply(api, alice, make_chat, fake_upstream, caplog):
    """Stored, then the new_message event fails: the reply must still start, or it would stay
    PROCESSING with no job, and the sender get an error for a message that is kept. The chat's
    stream key holds a string, so Redis itself refuses the XADD (WRONGTYPE, a ResponseError like
    any failed Redis write); the key is cleared when the reply starts, so its own events go through."""
    fake_upstream.configure(reply="still here")
    chat_uuid = make_chat(alice)["id"]
    redis = runtime.current().redis
    with runtime.session() as db:
        user = db.scalar(select(User).where(User.uuid == alice["id"]))
        chat, member = chats.chat_for_member(db, user, chat_uuid)
        stream = events.chat_stream_key(chat.id)
        redis.set(stream, "not a stream")

        def start_on_a_clean_stream(*args, **kwargs):
            redis.delete(stream)
            replies.start_reply(*args, **kwargs)

        replies.post_message(db, redis, chat, member, user, "hello?", start=start_on_a_clean_stream)
    assert "could not announce message" in caplog.text and "WRONGTYPE" in caplog.text

    def replied():
        messages = api.get(f"/api/v1/chat/chats/{chat_uuid}", headers=alice.headers).json()["messages"]
        return messages[-1]["status"] == "DELIVERED" and messages

    messages = wait_for(replied, what="the reply")
    assert [m["content"] for m in messages] == ["hello?", "still here"]
