"""The chats API (003): messages, threads, delivery status and reactions."""
from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import pytest

from sqlalchemy import event
from sqlalchemy import text as sql_text

from models import Chat, Message
from models.message import INTERNAL_META
from tests.api.test_chats_v1 import add_member, chat_uuid, create_chat, post
from tests.api.test_conversations import envelope
from tests.conftest import sent_while_writing, wait_for
from tests.pdfs import text_pdf
from web.services import chat_messages
from workers import leases, runtime

MESSAGE_FIELDS = {"id", "chat_id", "user_id", "content", "is_user", "message_type", "status", "message_metadata",
                  "parent_message_id", "reactions", "created_at", "updated_at"}


def set_status(api, account, message_id: int, status: str):
    return api.patch(f"/api/v1/messages/{message_id}/status", json={"status": status}, headers=account.headers)


def test_post_message_defaults_and_no_ai_reply(api, alice, fake_upstream):
    chat = create_chat(api, alice)
    message = post(api, alice, chat["id"], "hello")
    assert set(message) == MESSAGE_FIELDS
    assert isinstance(message["id"], int) and message["chat_id"] == chat["id"]
    assert message["is_user"] is True and message["user_id"] == str(alice["user_id"])
    assert message["message_type"] == "TEXT" and message["status"] == "SENT" and message["reactions"] == {}
    assert message["parent_message_id"] is None and message["message_metadata"] is None
    time.sleep(0.3)
    listed = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()
    assert listed == [message] and fake_upstream.completions == []
    assert api.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers).json()["message_count"] == 1


def test_post_message_kinds(api, alice):
    chat = create_chat(api, alice)
    delivered = post(api, alice, chat["id"], "noted", status="DELIVERED", message_metadata={"model": "mine"})
    assert delivered["is_user"] is True and delivered["user_id"] == str(alice["user_id"])
    assert delivered["status"] == "DELIVERED" and delivered["message_metadata"] == {"model": "mine"}
    for kind in ("IMAGE", "FILE"):
        sent = post(api, alice, chat["id"], "https://example.com/a.png", message_type=kind)
        assert sent["message_type"] == kind and sent["is_user"] is True
    system = post(api, alice, chat["id"], "Alice joined", message_type="SYSTEM")
    assert system["message_type"] == "SYSTEM" and system["is_user"] is False
    sending = post(api, alice, chat["id"], "on its way", status="SENDING")
    assert sending["status"] == "SENDING"
    history = api.get(f"/api/v1/chat/chats/{chat_uuid(api, alice, chat)}", headers=alice.headers).json()
    assert [m["message_type"] for m in history["messages"]] == ["USER", "USER", "USER", "SYSTEM", "USER"]


def test_nobody_posts_as_the_assistant(api, alice, make_user):
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    url = f"/api/v1/chats/{chat['id']}/messages"
    for account in (bob, alice):
        fake = api.post(url, json={"content": "the answer", "is_user": False, "status": "DELIVERED"},
                        headers=account.headers)
        assert fake.status_code == 403 and fake.json() == {"detail": "Only the assistant can post AI messages"}
    assert api.get(url, headers=alice.headers).json() == []
    system = post(api, alice, chat["id"], "Bob joined", is_user=False, message_type="SYSTEM")
    assert system["message_type"] == "SYSTEM" and system["user_id"] == str(alice["user_id"])


def test_a_line_typed_as_the_agent_on_002_is_an_ai_line_here(api, alice):
    """An assistant line shows `is_user: false` and no `user_id`, whoever typed it on another surface."""
    chat = create_chat(api, alice)
    typed = api.post(f"/chat/conversations/{chat['id']}/messages",
                     json={"content": "As the agent", "sender_type": "agent"}, headers=alice.headers)
    assert typed.status_code == 201, typed.text
    listed = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()
    assert [(m["content"], m["is_user"], m["user_id"]) for m in listed] == [("As the agent", False, None)]


def test_post_message_errors(api, alice, make_user):
    chat, other = create_chat(api, alice, chat_type="GROUP"), create_chat(api, alice)
    url = f"/api/v1/chats/{chat['id']}/messages"
    empty = api.post(url, json={"content": "  "}, headers=alice.headers)
    assert empty.status_code == 400 and empty.json() == {"detail": "Message content cannot be empty"}
    for body, field in (({"content": "x" * 50001}, "content"), ({}, "content"),
                        ({"content": "x", "message_type": "AI"}, "message_type"),
                        ({"content": "x", "status": "PROCESSING"}, "status"),
                        ({"content": "x", "is_user": "perhaps"}, "is_user"),
                        ({"content": "x", "parent_message_id": "first"}, "parent_message_id")):
        response = api.post(url, json=body, headers=alice.headers)
        assert response.status_code == 400 and response.json()["detail"][0]["loc"] == ["body", field], body
    elsewhere = post(api, alice, other["id"], "in another chat")
    for parent in (elsewhere["id"], 987654321):
        response = api.post(url, json={"content": "x", "parent_message_id": parent}, headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {"detail": "parent_message_id must be a message of this chat"}
    for parent in (0, -1, -10**20):  # no message has such an id (SQLite cannot even compare the last)
        response = api.post(url, json={"content": "x", "parent_message_id": parent}, headers=alice.headers)
        assert response.status_code == 400 and response.json()["detail"][0]["loc"] == ["body", "parent_message_id"]

    bob, eve = make_user("bob"), make_user("eve")
    add_member(api, alice, chat, bob)
    assert api.post(url, json={"content": "hi"}, headers=bob.headers).status_code == 200
    system = api.post(url, json={"content": "x", "message_type": "SYSTEM"}, headers=bob.headers)
    assert system.status_code == 403
    outsider = api.post(url, json={"content": "hi"}, headers=eve.headers)
    assert outsider.status_code == 403 and outsider.json() == {"detail": "Access denied to this chat"}
    assert api.post("/api/v1/chats/987654321/messages", json={"content": "hi"},
                    headers=alice.headers).status_code == 404

    api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "ARCHIVED"}, headers=alice.headers)
    archived = api.post(url, json={"content": "hi"}, headers=alice.headers)
    assert archived.status_code == 400 and "archived" in archived.json()["detail"]
    assert len(api.get(url, headers=alice.headers).json()) == 1  # an archived chat is still readable


def test_pipeline_metadata_is_never_shown_nor_taken(api, alice, make_user):
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    answer = post(api, alice, chat["id"], "an answer from alice's documents")
    pipeline = {"requested_by": alice["user_id"], "prompt_message_id": 1, "rag": {"query": "q"},
                "retrieved": [{"content": "alice's private chunk"}], "context_ids": ["c1"],
                "relevance_score": 0.9, "search": {"mode": "hybrid"}}
    with runtime.session() as db:  # as the reply pipeline leaves a RAG reply
        db.get(Message, answer["id"]).meta = {**pipeline, "note": "kept"}
        db.commit()
    [shown] = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers).json()
    assert shown["message_metadata"] == {"note": "kept"}
    react = api.post(f"/api/v1/messages/{answer['id']}/reactions", json={"reaction": "👍"}, headers=bob.headers)
    assert react.json()["message_metadata"] == {"note": "kept"}

    url = f"/api/v1/chats/{chat['id']}/messages"
    for key in sorted(INTERNAL_META):
        sent = api.post(url, json={"content": "x", "message_metadata": {key: alice["user_id"], "note": 1}},
                        headers=bob.headers)
        assert sent.status_code == 400, key
        assert sent.json() == {"detail": f"message_metadata cannot set {key}: these keys are the server's"}
    assert len(api.get(url, headers=bob.headers).json()) == 1


def test_a_replys_request_is_not_shown_as_its_metadata(api, alice, make_user, fake_upstream):
    """An AI reply keeps which agent it was asked of and whether the asker sent the history
    (002's agent_id and include_context): the asker's request, not metadata of the chat's, so
    003 and 004 show the other members none of it (here bob's own private agent)."""
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    agent = api.post("/chat/agents", json={"name": "bob's own"}, headers=bob.headers).json()["data"]["agent_id"]
    asked = api.post(f"/chat/conversations/{chat['id']}/ai-response", headers=bob.headers,
                     json={"message": "hi", "agent_id": agent, "include_context": False})
    assert asked.status_code == 200, asked.text
    reply = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()[-1]
    assert reply["is_user"] is False and reply["message_metadata"] is None
    session = api.get(f"/chat/sessions/{chat_uuid(api, alice, chat)}", headers=alice.headers).json()
    assert session["messages"][-1]["metadata"] == {"status": "DELIVERED", "model": "gpt-3.5-turbo"}


def test_list_messages_paging_and_threads(api, alice, make_user):
    chat = create_chat(api, alice)
    url = f"/api/v1/chats/{chat['id']}/messages"
    root = post(api, alice, chat["id"], "root")
    other = post(api, alice, chat["id"], "other topic")
    reply = post(api, alice, chat["id"], "reply", parent_message_id=root["id"])
    nested = post(api, alice, chat["id"], "reply to reply", parent_message_id=reply["id"])
    post(api, alice, chat["id"], "reply to other", parent_message_id=other["id"])
    assert reply["parent_message_id"] == root["id"] and nested["parent_message_id"] == reply["id"]

    everything = api.get(url, headers=alice.headers).json()
    assert [m["content"] for m in everything] == ["root", "other topic", "reply", "reply to reply", "reply to other"]
    newest = api.get(f"{url}?limit=2", headers=alice.headers).json()
    assert [m["content"] for m in newest] == ["reply to reply", "reply to other"]
    older = api.get(f"{url}?limit=2&skip=2", headers=alice.headers).json()
    assert [m["content"] for m in older] == ["other topic", "reply"]
    thread = api.get(f"{url}?thread_id={root['id']}", headers=alice.headers).json()
    assert [m["id"] for m in thread] == [root["id"], reply["id"], nested["id"]]
    branch = api.get(f"{url}?thread_id={reply['id']}", headers=alice.headers).json()
    assert [m["id"] for m in branch] == [reply["id"], nested["id"]]

    unknown = api.get(f"{url}?thread_id=987654321", headers=alice.headers)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Thread not found in this chat"}
    for query in ("thread_id=abc", "limit=0", "limit=1001", "skip=-1"):
        assert api.get(f"{url}?{query}", headers=alice.headers).status_code == 400, query
    assert api.get(url, headers=make_user("eve").headers).status_code == 403


def test_status_moves_forward_only(api, alice, make_user):
    chat = create_chat(api, alice, chat_type="GROUP")
    message = post(api, alice, chat["id"], status="SENDING")
    for status in ("SENT", "DELIVERED", "READ"):
        response = set_status(api, alice, message["id"], status)
        assert response.status_code == 200 and response.json()["status"] == status
        assert set(response.json()) == MESSAGE_FIELDS and response.json()["id"] == message["id"]
    same = set_status(api, alice, message["id"], "READ")
    assert same.status_code == 200 and same.json()["status"] == "READ"
    for status in ("DELIVERED", "SENDING", "FAILED"):
        backwards = set_status(api, alice, message["id"], status)
        assert backwards.status_code == 400
        assert backwards.json() == {"detail": f"Cannot change message status from READ to {status}"}

    skipping = post(api, alice, chat["id"])
    assert set_status(api, alice, skipping["id"], "READ").json()["status"] == "READ"
    failing = post(api, alice, chat["id"], status="SENDING")
    assert set_status(api, alice, failing["id"], "FAILED").json()["status"] == "FAILED"
    stuck = set_status(api, alice, failing["id"], "SENT")
    assert stuck.status_code == 400 and stuck.json()["detail"] == "Cannot change message status from FAILED to SENT"
    delivered = post(api, alice, chat["id"], status="DELIVERED")
    late = set_status(api, alice, delivered["id"], "FAILED")
    assert late.status_code == 400 and "DELIVERED to FAILED" in late.json()["detail"]

    invalid = set_status(api, alice, message["id"], "PROCESSING")
    assert invalid.status_code == 400 and invalid.json()["detail"][0]["loc"] == ["body", "status"]
    assert set_status(api, alice, 987654321, "READ").status_code == 404
    assert set_status(api, make_user("eve"), message["id"], "READ").status_code == 403


def stored_status(message_id: int) -> str:
    with runtime.session() as db:
        return db.get(Message, message_id).status


def test_an_ai_replys_outcome_is_kept(api, alice, make_user, make_chat, fake_upstream):
    fake_upstream.configure(tokens=2)
    bob = make_user("bob")
    made = make_chat(alice, title=f"asked {time.time_ns()}", chat_type="GROUP")
    add_member(api, alice, made, bob)
    api.post(f"/api/v1/chat/chats/{made['id']}/messages", json={"content": "hi AI"}, headers=alice.headers)
    chat = next(c for c in api.get("/api/v1/chats", headers=alice.headers).json() if c["title"] == made["title"])
    url = f"/api/v1/chats/{chat['id']}/messages"
    reply = wait_for(lambda: (ms := api.get(url, headers=bob.headers).json())
                     and len(ms) == 2 and ms[-1]["status"] == "DELIVERED" and ms[-1])
    for status in ("DELIVERED", "READ", "READ"):  # acknowledged: 200, the outcome kept
        marked = set_status(api, bob, reply["id"], status)
        assert marked.status_code == 200 and marked.json()["status"] == "DELIVERED"
        assert stored_status(reply["id"]) == "DELIVERED"
    history = api.get(f"/api/v1/chat/chats/{made['id']}", headers=alice.headers).json()["messages"]
    assert history[-1]["status"] == "DELIVERED"
    for status in ("FAILED", "SENT"):
        refused = set_status(api, alice, reply["id"], status)
        assert refused.status_code == 400
        assert refused.json() == {"detail": "An AI reply's status is its outcome: it can only be marked "
                                            f"DELIVERED or READ, not {status}"}
    for outcome in ("CANCELLED", "FAILED"):
        with runtime.session() as db:
            db.get(Message, reply["id"]).status = outcome
            db.commit()
        assert set_status(api, bob, reply["id"], "READ").status_code == 200
        assert stored_status(reply["id"]) == outcome


def test_only_the_sender_or_managers_mark_sent_or_failed(api, alice, make_user):
    bob, reader = make_user("bob"), make_user("reader")
    chat = create_chat(api, alice, chat_type="SYSTEM")
    add_member(api, alice, chat, bob, can_send_messages=True)
    add_member(api, alice, chat, reader)
    alices = post(api, alice, chat["id"], status="SENDING")
    for account in (reader, bob):
        for status in ("FAILED", "SENT"):
            refused = set_status(api, account, alices["id"], status)
            assert refused.status_code == 403
            assert refused.json() == {"detail": f"Only the message's sender or the chat's owner or admins can "
                                                f"mark it {status}; others can mark it DELIVERED or READ"}
    assert stored_status(alices["id"]) == "SENDING"
    assert set_status(api, alice, alices["id"], "FAILED").json()["status"] == "FAILED"
    acknowledged = post(api, alice, chat["id"], status="SENDING")
    assert set_status(api, reader, acknowledged["id"], "DELIVERED").json()["status"] == "DELIVERED"
    bobs = post(api, bob, chat["id"], status="SENDING")
    assert set_status(api, alice, bobs["id"], "FAILED").json()["status"] == "FAILED"  # the owner may
    own = post(api, bob, chat["id"], status="SENT")
    assert set_status(api, bob, own["id"], "FAILED").json()["status"] == "FAILED"


def test_read_marks_the_chat_read_up_to_that_message(api, alice, make_user, fake_upstream):
    """READ is a message's status: it reads the chat up to that message (its time becomes the
    reader's `last_read_at`, shown by the chat API), never further, so the messages after it stay
    unread (002's unread_count), and never back, when an older message is marked READ later."""
    fake_upstream.configure(tokens=1)
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    participants_url = f"/api/v1/chat/chats/{chat_uuid(api, alice, chat)}/participants"

    def read_state(account) -> tuple[str | None, int]:
        listed = api.get(participants_url, headers=alice.headers).json()["participants"]
        unread = envelope(api.get(f"/chat/conversations/{chat['id']}", headers=account.headers))["unread_count"]
        return next(p["last_read_at"] for p in listed if p["user_id"] == account["id"]), unread

    first, second, third = (post(api, alice, chat["id"], text) for text in ("one", "two", "three"))
    assert set_status(api, bob, second["id"], "DELIVERED").status_code == 200
    assert read_state(bob) == (None, 3)
    assert set_status(api, bob, second["id"], "READ").status_code == 200
    assert read_state(bob) == (second["created_at"], 1)
    assert set_status(api, bob, first["id"], "READ").status_code == 200
    assert set_status(api, bob, second["id"], "READ").status_code == 200  # read again: no change
    assert read_state(bob) == (second["created_at"], 1)
    assert set_status(api, bob, third["id"], "READ").status_code == 200
    assert read_state(bob) == (third["created_at"], 0)
    reply = envelope(api.post(f"/chat/conversations/{chat['id']}/ai-response", json={"message": "hi"},
                              headers=alice.headers))
    assert read_state(bob)[1] == 2  # alice's question and its reply
    assert set_status(api, bob, reply["message_id"], "READ").status_code == 200  # an AI reply: read up to it too
    assert read_state(bob)[1] == 0


def test_reactions_per_user_and_idempotent(api, alice, make_user):
    bob, eve = make_user("bob"), make_user("eve")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    message = post(api, alice, chat["id"], "react to me")
    url = f"/api/v1/messages/{message['id']}/reactions"
    added = api.post(url, json={"reaction": "👍"}, headers=alice.headers)
    assert added.status_code == 200 and added.json()["reactions"] == {"👍": [str(alice["user_id"])]}
    twice = api.post(url, json={"reaction": "👍"}, headers=alice.headers)
    assert twice.status_code == 200 and twice.json()["reactions"] == {"👍": [str(alice["user_id"])]}
    api.post(url, json={"reaction": "👍"}, headers=bob.headers)
    both = api.post(url, json={"reaction": " ❤️ "}, headers=bob.headers).json()["reactions"]
    assert both == {"👍": [str(alice["user_id"]), str(bob["user_id"])], "❤️": [str(bob["user_id"])]}
    listed = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()
    assert listed[0]["reactions"] == both

    removed = api.delete(f"{url}/👍", headers=alice.headers)
    assert removed.status_code == 200
    assert removed.json()["reactions"] == {"👍": [str(bob["user_id"])], "❤️": [str(bob["user_id"])]}
    gone = api.delete(f"{url}/👍", headers=alice.headers)
    assert gone.status_code == 404 and gone.json() == {"detail": "Reaction not found"}
    padded = api.post(url, json={"reaction": " 🎉 "}, headers=alice.headers)  # stored trimmed
    assert padded.json()["reactions"]["🎉"] == [str(alice["user_id"])]
    taken_back = api.delete(f"{url}/{quote(' 🎉 ', safe='')}", headers=alice.headers)  # named as it was added
    assert taken_back.status_code == 200 and "🎉" not in taken_back.json()["reactions"]

    for body in ({"reaction": ""}, {"reaction": "   "}, {"reaction": "x" * 51}, {}):
        response = api.post(url, json=body, headers=alice.headers)
        assert response.status_code == 400 and response.json()["detail"][0]["loc"] == ["body", "reaction"], body
    assert api.post(url, json={"reaction": "👍"}, headers=eve.headers).status_code == 403
    assert api.delete(f"{url}/❤️", headers=eve.headers).status_code == 403
    assert api.post("/api/v1/messages/987654321/reactions", json={"reaction": "👍"},
                    headers=alice.headers).status_code == 404


def test_a_user_makes_at_most_20_reactions_on_a_message(api, alice, make_user):
    """Every listing of a chat carries each message's reactions: one member adding thousands of
    distinct ones would make every member's listings megabytes long."""
    bob = make_user("bob")
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    message = post(api, alice, chat["id"], "react to me")
    url = f"/api/v1/messages/{message['id']}/reactions"
    for n in range(20):
        assert api.post(url, json={"reaction": f"r{n}"}, headers=bob.headers).status_code == 200, n
    refused = api.post(url, json={"reaction": "one more"}, headers=bob.headers)
    assert refused.status_code == 400
    assert refused.json() == {"detail": "You have made 20 reactions on this message, the most one can; "
                                        "remove one to add another"}
    assert api.post(url, json={"reaction": "r0"}, headers=bob.headers).status_code == 200  # one made: no change
    assert api.post(url, json={"reaction": "mine"}, headers=alice.headers).status_code == 200  # each their own 20
    assert api.delete(f"{url}/r0", headers=bob.headers).status_code == 200
    assert api.post(url, json={"reaction": "one more"}, headers=bob.headers).status_code == 200
    listed = api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()[0]["reactions"]
    assert len(listed) == 21 and "r0" not in listed


def test_every_reaction_added_can_be_removed(api, alice):
    message = post(api, alice, create_chat(api, alice)["id"])
    url = f"/api/v1/messages/{message['id']}/reactions"
    for reaction in ("a/b", "/", ".", " .. "):
        refused = api.post(url, json={"reaction": reaction}, headers=alice.headers)
        assert refused.status_code == 400, reaction
        assert refused.json()["detail"][0]["loc"] == ["body", "reaction"]
        assert "cannot contain '/' nor be '.' or '..'" in refused.json()["detail"][0]["msg"]
    for reaction in ("a.b", "...", "?", "#", "%", "%2F", "a b", "\\", "\x1c"):
        assert api.post(url, json={"reaction": reaction}, headers=alice.headers).status_code == 200, reaction
        removed = api.delete(f"{url}/{quote(reaction, safe='')}", headers=alice.headers)
        assert removed.status_code == 200 and removed.json()["reactions"] == {}, reaction


def test_messages_of_archived_and_deleted_chats(api, alice):
    chat = create_chat(api, alice)
    message = post(api, alice, chat["id"])
    api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "ARCHIVED"}, headers=alice.headers)
    assert set_status(api, alice, message["id"], "READ").status_code == 200
    reactions_url = f"/api/v1/messages/{message['id']}/reactions"
    assert api.post(reactions_url, json={"reaction": "👀"}, headers=alice.headers).status_code == 200
    api.patch(f"/api/v1/chats/{chat['id']}/status", json={"status": "DELETED"}, headers=alice.headers)
    assert set_status(api, alice, message["id"], "READ").status_code == 404
    gone = api.post(reactions_url, json={"reaction": "👍"}, headers=alice.headers)
    assert gone.status_code == 404 and gone.json() == {"detail": "Message not found"}
    assert api.delete(f"{reactions_url}/👀", headers=alice.headers).status_code == 404


def test_hidden_messages_are_never_shown(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=1)
    made = make_chat(alice, title="hidden exchange")
    api.post(f"/api/v1/chat/chats/{made['id']}/messages", json={"content": "kept"}, headers=alice.headers)
    secret = api.post(f"/api/v1/chat/chats/{made['id']}/ai-message",
                      json={"message": "not kept", "save_to_history": False}, headers=alice.headers)
    assert secret.status_code == 200, secret.text
    chat = next(c for c in api.get("/api/v1/chats", headers=alice.headers).json() if c["title"] == made["title"])
    contents = [m["content"] for m in api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json()]
    assert "kept" in contents and "not kept" not in contents


def test_a_hidden_exchange_leaves_the_chats_activity_as_it_was(api, alice, make_chat, fake_upstream):
    """A message not kept (000's save_to_history: false) is not the chat's last message: it moves no
    chat up the lists of the members, here or on 002, as its hidden reply already does not."""
    fake_upstream.configure(tokens=1)
    quiet, busy = make_chat(alice, title="quiet chat"), make_chat(alice, title="busy chat")
    for made in (quiet, busy):  # one after the other, each reply ended: busy is the more recent
        sent = api.post(f"/api/v1/chat/chats/{made['id']}/messages", json={"content": "kept"}, headers=alice.headers)
        assert sent.status_code == 200, sent.text
        chat_id = next(c["id"] for c in api.get("/api/v1/chats", headers=alice.headers).json()
                       if c["title"] == made["title"])
        wait_for(lambda: api.get(f"/api/v1/chats/{chat_id}/messages",
                                 headers=alice.headers).json()[-1]["status"] == "DELIVERED")
    before = {c["title"]: c for c in api.get("/api/v1/chats", headers=alice.headers).json()}
    assert list(before)[:2] == ["busy chat", "quiet chat"]
    secret = api.post(f"/api/v1/chat/chats/{quiet['id']}/ai-message",
                      json={"message": "not kept", "save_to_history": False}, headers=alice.headers)
    assert secret.status_code == 200, secret.text
    after = api.get("/api/v1/chats", headers=alice.headers).json()
    assert [c["title"] for c in after][:2] == ["busy chat", "quiet chat"]
    shown = next(c for c in after if c["title"] == "quiet chat")
    assert shown["message_count"] == 2
    assert shown["last_activity_at"] == before["quiet chat"]["last_activity_at"]
    conversation = api.get(f"/chat/conversations/{shown['id']}", headers=alice.headers).json()["data"]
    newest = api.get(f"/api/v1/chats/{shown['id']}/messages", headers=alice.headers).json()[-1]
    assert newest["content"] != "not kept" and conversation["last_message_at"] == newest["created_at"]


def test_messages_posted_at_once_are_all_counted(api, alice, make_user):
    from concurrent.futures import ThreadPoolExecutor

    bob = make_user()
    chat = create_chat(api, alice, chat_type="GROUP")
    add_member(api, alice, chat, bob)
    senders = [alice, bob] * 12
    with ThreadPoolExecutor(8) as pool:
        sent = list(pool.map(lambda account: post(api, account, chat["id"], "at once"), senders))
    assert len({m["id"] for m in sent}) == 24
    assert api.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers).json()["message_count"] == 24


def test_a_thread_is_walked_through_its_chats_index(api, alice):
    """Reading a thread follows the replies among its chat's messages, through the chat's index:
    there is no index on parent_id, and walking every chat's messages read the whole table once
    per level (PostgreSQL, 1M messages: 1.8 s for a thread 10 deep, 11 ms through the chat)."""
    chat = create_chat(api, alice)
    root = post(api, alice, chat["id"], "root")
    post(api, alice, chat["id"], "reply", parent_message_id=root["id"])
    walks: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, *args):
        if "RECURSIVE" in statement.upper():
            walks.append((statement, parameters))

    with runtime.session() as db:
        engine = db.get_bind()
        event.listen(engine, "before_cursor_execute", record)
        try:
            thread = chat_messages.list_messages(db, db.get(Chat, chat["id"]), 100, 0, root["id"])
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert [m.content for m in thread] == ["root", "reply"] and len(walks) == 1
        statement, parameters = walks[0]
        sqlite = engine.dialect.name == "sqlite"
        if not sqlite:
            db.execute(sql_text("SET LOCAL enable_seqscan = off"))  # what it would do on a big table
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        plan = "\n".join(str(row[-1]) for row in db.connection().exec_driver_sql(explain + statement, parameters))
    # SQLite's automatic index is built by reading the whole table, for every such query
    assert not re.search(r"(SCAN|Seq Scan on) messages\b|AUTOMATIC", plan), plan


@pytest.mark.parametrize("deletion", ["for good", "status DELETED"])
def test_writes_racing_the_chats_deletion_are_404(api, alice, deletion):
    """A chat deleted for good (DELETE /v1/chat/sessions/{id}: a session is a chat), or set DELETED
    (003, 002), while a post, reaction or status change that had read it ran: 404 as for a chat
    deleted before, not the foreign key or stale row error (a 500), no 200 for a reaction that
    was never stored, nor a write to a chat no surface shows any more."""
    chats = Chat.__table__
    requests = {
        "post": lambda chat, message: api.post(f"/api/v1/chats/{chat['id']}/messages", json={"content": "late"},
                                               headers=alice.headers),
        "reaction": lambda chat, message: api.post(f"/api/v1/messages/{message['id']}/reactions",
                                                   json={"reaction": "like"}, headers=alice.headers),
        "status": lambda chat, message: api.patch(f"/api/v1/messages/{message['id']}/status",
                                                  json={"status": "READ"}, headers=alice.headers),
    }
    missing = {"post": "Chat not found", "reaction": "Message not found", "status": "Message not found"}
    for name, request in requests.items():
        chat = create_chat(api, alice)
        message = post(api, alice, chat["id"], "first")
        deleting = (chats.delete() if deletion == "for good" else chats.update().values(status="DELETED"))
        raced = sent_while_writing(deleting.where(chats.c.id == chat["id"]), lambda: request(chat, message))
        assert (name, raced.status_code, raced.json()) == (name, 404, {"detail": missing[name]})


def test_posts_racing_the_chats_archiving_are_refused(api, alice):
    """A post that read the chat ACTIVE while its archiving was committing: refused as a post sent
    after it (400 saying it is archived; 404 on the chat API, which hides archived chats), with
    nothing stored, on every surface that adds to a chat."""
    session = "Chat session is archived: unarchive it to continue it"
    requests = {  # name: (request, status, error body)
        "003 post": (lambda chat: api.post(f"/api/v1/chats/{chat['id']}/messages", json={"content": "late"},
                                           headers=alice.headers),
                     400, {"detail": "Chat is archived: set its status to ACTIVE to post"}),
        "000 post": (lambda chat: api.post(f"/api/v1/chat/chats/{chat['uuid']}/messages", json={"content": "late"},
                                           headers=alice.headers),
                     404, {"detail": "Chat not found"}),
        "001 stream": (lambda chat: api.post("/v1/chat/stream", headers=alice.headers, json={
            "model": "gpt-4", "messages": [{"role": "user", "content": "late"}], "session_id": chat["id"]}),
                       400, {"detail": session}),
        "001 upload": (lambda chat: api.post(f"/api/chat/sessions/{chat['id']}/upload", headers=alice.headers,
                                             files={"file": ("late.pdf", text_pdf(["late"]), "application/pdf")}),
                       400, {"detail": session}),
        "002 post": (lambda chat: api.post(f"/chat/conversations/{chat['id']}/messages", json={"content": "late"},
                                           headers=alice.headers),
                     400, {"success": False, "message": "Conversation is archived: unarchive it to post",
                           "data": None}),
        "004 send": (lambda chat: api.post("/chat/send", json={"message": "late", "session_id": chat["uuid"]},
                                           headers=alice.headers),
                     400, {"detail": session}),
    }
    for name, (request, status, error) in requests.items():
        chat = create_chat(api, alice, chat_type="GROUP")
        chat["uuid"] = chat_uuid(api, alice, chat)
        archiving = Chat.__table__.update().where(Chat.__table__.c.id == chat["id"]).values(status="ARCHIVED")
        raced = sent_while_writing(archiving, lambda: request(chat))
        assert (name, raced.status_code, raced.json()) == (name, status, error)
        assert api.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers).json() == [], name
        assert api.get(f"/api/chat/sessions/{chat['id']}/files", headers=alice.headers).json()["files"] == [], name
    assert runtime.current().redis.zcard(leases.replies_key(alice["user_id"])) == 0  # their slots given back
