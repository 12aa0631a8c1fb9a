"""Conversations API (002): messages, unread counts, attachments and the session history."""
from __future__ import annotations

from datetime import timedelta

from models import Message, SessionSpan
from tests.api.test_conversations import backdate, conversations, create, envelope
from tests.conftest import wait_for
from web.services import conversations as conversation_service


def add(api, account, conversation_id, content="Hello", **body):
    response = api.post(f"/chat/conversations/{conversation_id}/messages", json={"content": content, **body},
                        headers=account.headers)
    return envelope(response, 201)


def messages(api, account, conversation_id, **params):
    return envelope(api.get(f"/chat/conversations/{conversation_id}/messages", params=params,
                            headers=account.headers))


def test_add_message_answers_the_documented_fields_and_calls_no_ai(api, alice, fake_upstream):
    conversation_id = create(api, alice)
    data = add(api, alice, conversation_id, "My order number is #12345", sender_type="user")
    assert isinstance(data["message_id"], int) and data["conversation_id"] == conversation_id
    assert data["content"] == "My order number is #12345" and data["sender"] == "user"
    assert data["created_at"].endswith("Z") and data["attachments"] == []
    agent_line = add(api, alice, conversation_id, "Hello! How can I help?", sender_type="agent")
    assert agent_line["sender"] == "agent"
    assert fake_upstream.completions == []
    listed = messages(api, alice, conversation_id)
    assert [m["sender"] for m in listed["messages"]] == ["user", "agent"]
    assert envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))["total_messages"] == 2


def test_list_messages_in_the_documented_shape_oldest_first_with_paging(api, alice):
    conversation_id = create(api, alice)
    ids = [add(api, alice, conversation_id, f"line {n}")["message_id"] for n in range(5)]
    data = messages(api, alice, conversation_id)
    assert (data["total"], data["limit"], data["offset"]) == (5, 50, 0)
    assert [m["id"] for m in data["messages"]] == ids
    first = data["messages"][0]
    assert list(first)[:10] == ["id", "conversation_id", "content", "content_type", "sender", "message_type",
                                "status", "tokens_used", "processing_time", "created_at"]
    assert (first["content_type"], first["message_type"], first["status"]) == ("text", "text", "delivered")
    assert first["tokens_used"] is None and first["processing_time"] is None
    page = messages(api, alice, conversation_id, limit=2, offset=2)
    assert [m["id"] for m in page["messages"]] == ids[2:4] and page["total"] == 5


def test_message_errors(api, alice, make_user):
    conversation_id = create(api, alice)
    url = f"/chat/conversations/{conversation_id}/messages"
    for body in ({"content": ""}, {"content": "   "}, {"content": "x" * 50001}, {"content": "a\x00b"},
                 {"content": "hi", "sender_type": "system"}, {}):
        envelope(api.post(url, json=body, headers=alice.headers), 422)
    envelope(api.post("/chat/conversations/999999999/messages", json={"content": "hi"}, headers=alice.headers), 404)
    envelope(api.post(url, json={"content": "hi"}, headers=make_user("eve").headers), 403)
    envelope(api.get(url, params={"limit": 201}, headers=alice.headers), 422)


def team_with_bob(api, alice, make_user, make_chat):
    """Bob, and alice's GROUP chat "Team" (as a 002 conversation) with him as a member."""
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP", title="Team")
    added = api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]},
                     headers=alice.headers)
    assert added.status_code == 201, added.text
    return bob, next(c for c in conversations(api, alice)["conversations"] if c["title"] == "Team")


def test_unread_counts_others_messages_until_listed(api, alice, make_user, make_chat):
    bob, team = team_with_bob(api, alice, make_user, make_chat)
    for n in range(3):
        add(api, bob, team["id"], f"from bob {n}")
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 3
    assert conversations(api, bob)["conversations"][0]["unread_count"] == 0  # his own messages
    add(api, alice, team["id"], "alice answers")
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 0  # posting reads the chat
    assert conversations(api, bob)["conversations"][0]["unread_count"] == 1
    add(api, bob, team["id"], "one more from bob")
    assert envelope(api.get(f"/chat/conversations/{team['id']}", headers=alice.headers))["unread_count"] == 1
    messages(api, alice, team["id"])
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 0


def test_an_exchange_kept_out_of_history_does_not_read_the_chat(api, alice, make_user, make_chat, fake_upstream):
    """An ai-message with save_to_history false is no chat activity: bob's message stays unread for
    alice (posting it marked everything read, messages she never saw among them)."""
    bob, team = team_with_bob(api, alice, make_user, make_chat)
    add(api, bob, team["id"], "from bob")
    chat_uuid = {c["title"]: c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()}["Team"]
    asked = api.post(f"/api/v1/chat/chats/{chat_uuid}/ai-message", json={"message": "aside", "save_to_history": False},
                     headers=alice.headers)
    assert asked.status_code == 200, asked.text
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 1


def test_a_new_member_has_read_what_was_said_before_they_joined(api, alice, make_user, make_chat):
    chat = make_chat(alice, chat_type="GROUP", title="Old news")
    team = next(c for c in conversations(api, alice)["conversations"] if c["title"] == "Old news")
    for n in range(2):
        add(api, alice, team["id"], f"before bob {n}")
    bob = make_user("bob")
    added = api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]},
                     headers=alice.headers)
    assert added.status_code == 201, added.text
    assert conversations(api, bob)["conversations"][0]["unread_count"] == 0
    add(api, alice, team["id"], "welcome bob")
    assert conversations(api, bob)["conversations"][0]["unread_count"] == 1


def test_a_reply_still_being_written_when_listed_is_unread_once_it_ends(api, alice, make_user, make_chat,
                                                                      fake_upstream):
    """The reply and its question share a time: listing the question must not count the reply as read."""
    fake_upstream.configure(reply="Here is the answer", first_delay_ms=600)
    bob, team = team_with_bob(api, alice, make_user, make_chat)
    chat_uuid = next(c for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()
                     if c["title"] == "Team")["id"]
    posted = api.post(f"/api/v1/chat/chats/{chat_uuid}/messages", json={"content": "Question"}, headers=bob.headers)
    assert posted.status_code == 200, posted.text
    listed = messages(api, alice, team["id"])["messages"]
    assert [(m["content"], m["status"]) for m in listed][-1] == ("", "processing")
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 1  # bob's question, until it ends
    wait_for(lambda: messages(api, bob, team["id"])["messages"][-1]["status"] == "delivered", what="the reply")
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 2  # the question and the reply
    assert conversations(api, bob)["conversations"][0]["unread_count"] == 0  # he listed it finished
    messages(api, alice, team["id"])
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 0


def test_only_the_owner_or_admins_post_as_the_agent(api, alice, make_user, make_chat):
    """A member's words typed as the agent would reach the model as its own turns in the owner's replies."""
    bob, team = team_with_bob(api, alice, make_user, make_chat)
    refused = api.post(f"/chat/conversations/{team['id']}/messages",
                       json={"content": "I promise a refund", "sender_type": "agent"}, headers=bob.headers)
    assert refused.status_code == 403
    assert refused.json() == {"success": False, "message": "Only the conversation's owner or admins can post as the agent",
                              "data": None}
    assert add(api, alice, team["id"], "Hello from support", sender_type="agent")["sender"] == "agent"
    assert [m["content"] for m in messages(api, alice, team["id"])["messages"]] == ["Hello from support"]


def test_nobody_posts_to_an_archived_conversation(api, alice, fake_upstream):
    """An archived chat takes no messages on any surface (003 answers 400) until it is active again."""
    conversation_id = create(api, alice)
    envelope(api.put(f"/chat/conversations/{conversation_id}", json={"is_archived": True}, headers=alice.headers))
    refused = api.post(f"/chat/conversations/{conversation_id}/messages", json={"content": "hi"},
                       headers=alice.headers)
    envelope(refused, 400)
    assert "archived" in refused.json()["message"]
    asked = api.post(f"/chat/conversations/{conversation_id}/ai-response", json={"message": "hi"},
                     headers=alice.headers)
    envelope(asked, 400)
    assert fake_upstream.completions == []
    assert messages(api, alice, conversation_id)["total"] == 0
    assert api.post(f"/api/v1/chats/{conversation_id}/messages", json={"content": "hi"},
                    headers=alice.headers).status_code == 400
    envelope(api.put(f"/chat/conversations/{conversation_id}", json={"is_archived": False}, headers=alice.headers))
    add(api, alice, conversation_id, "back again")
    assert messages(api, alice, conversation_id)["total"] == 1


def test_listing_a_page_marks_only_that_page_read(api, alice, make_user, make_chat):
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP", title="Paged")
    api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]}, headers=alice.headers)
    conversation_id = conversations(api, alice)["conversations"][0]["id"]
    ids = [add(api, bob, conversation_id, f"news {n}")["message_id"] for n in range(4)]
    for n, message_id in enumerate(ids):  # distinct times, so a page's newest message is a clear boundary
        backdate(Message, message_id, created_at=timedelta(seconds=10 - n))
    messages(api, alice, conversation_id, limit=2)
    assert conversations(api, alice)["conversations"][0]["unread_count"] == 2


def test_listing_an_older_page_never_moves_what_was_read_back(api, alice, make_user, make_chat, monkeypatch):
    """A READ on 003 (now) landing while 002 lists an older page keeps the later mark: the listing
    only moves `last_read_at` forward."""
    bob, team = team_with_bob(api, alice, make_user, make_chat)
    older, newer = (add(api, bob, team["id"], text)["message_id"] for text in ("older", "newer"))
    backdate(Message, older, created_at=timedelta(seconds=10))
    list_page = conversation_service.attachments_of

    def list_page_while_read_elsewhere(db, message_ids):
        found = list_page(db, message_ids)  # the listing has read the participant and its page
        read = api.patch(f"/api/v1/messages/{newer}/status", json={"status": "READ"}, headers=alice.headers)
        assert read.status_code == 200, read.text
        return found

    monkeypatch.setattr(conversation_service, "attachments_of", list_page_while_read_elsewhere)
    assert [m["id"] for m in messages(api, alice, team["id"], limit=1)["messages"]] == [older]
    monkeypatch.undo()
    assert envelope(api.get(f"/chat/conversations/{team['id']}", headers=alice.headers))["unread_count"] == 0


def test_attachments_are_stored_and_listed(api, alice):
    conversation_id = create(api, alice)
    files = [{"file_name": "invoice.pdf", "file_type": "application/pdf", "file_size": 2048,
              "file_path": "s3://bucket/invoice.pdf"}, {"file_name": "photo.png"}]
    data = add(api, alice, conversation_id, "see attached", attachments=files)
    assert [a["file_name"] for a in data["attachments"]] == ["invoice.pdf", "photo.png"]
    listed = messages(api, alice, conversation_id)["messages"][0]["attachments"]
    assert listed[0] | {"id": 0, "created_at": ""} == {**files[0], "id": 0, "created_at": ""}
    assert listed[1]["file_type"] is None and listed[1]["file_size"] is None
    too_many = api.post(f"/chat/conversations/{conversation_id}/messages",
                        json={"content": "x", "attachments": [{"file_name": "a"}] * 11}, headers=alice.headers)
    envelope(too_many, 422)
    envelope(api.post(f"/chat/conversations/{conversation_id}/messages",
                      json={"content": "x", "attachments": [{"file_size": 3}]}, headers=alice.headers), 422)


def test_session_history_spans_and_gaps(api, alice):
    conversation_id = create(api, alice)
    add(api, alice, conversation_id, "one")
    add(api, alice, conversation_id, "two")
    sessions = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))["sessions"]
    assert len(sessions) == 1 and sessions[0]["messages_count"] == 2 and sessions[0]["duration_minutes"] == 0
    # the span began 45 minutes ago and its last message was 40 minutes ago
    backdate(SessionSpan, sessions[0]["id"], session_start=timedelta(minutes=45), session_end=timedelta(minutes=40))
    add(api, alice, conversation_id, "back after a break")
    sessions = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))["sessions"]
    assert [s["messages_count"] for s in sessions] == [2, 1]
    assert sessions[1]["session_start"] == sessions[1]["session_end"] and sessions[1]["duration_minutes"] == 0
    # ten minutes of quiet is still the same session
    backdate(SessionSpan, sessions[1]["id"], session_start=timedelta(minutes=12), session_end=timedelta(minutes=10))
    add(api, alice, conversation_id, "still here")
    last = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))["sessions"][-1]
    assert last["messages_count"] == 2 and last["duration_minutes"] == 12


def test_messages_posted_at_once_make_one_session_counting_them_all(api, alice, make_user, make_chat):
    """Each post counts in the chat's current session under the chat's write lock, on SQLite too
    (where SELECT ... FOR UPDATE locks nothing): no post is lost and none opens a second session."""
    from concurrent.futures import ThreadPoolExecutor

    bob, team = team_with_bob(api, alice, make_user, make_chat)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda account: add(api, account, team["id"], "at once"), [alice, bob] * 20))
    details = envelope(api.get(f"/chat/conversations/{team['id']}", headers=alice.headers))
    assert details["total_messages"] == 40
    assert [s["messages_count"] for s in details["sessions"]] == [40]
