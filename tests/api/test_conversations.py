"""Conversations API (002): conversations, the envelope on every answer and error, other surfaces."""
from __future__ import annotations

import pytest

from models import Chat
from tests.conftest import sent_while_deleting
from web.api.conversations.envelope import PREFIXES
from web.services import conversations as conversation_service
from workers import runtime


def envelope(response, status=200):
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body)[:3] == ["success", "message", "data"] and body["success"] is (status < 400)
    assert isinstance(body["message"], str) and body["message"]
    return body["data"]


def create(api, account, **body):
    return envelope(api.post("/chat/conversations", json=body, headers=account.headers), 201)["conversation_id"]


def conversations(api, account, **params):
    return envelope(api.get("/chat/conversations", params=params, headers=account.headers))


def backdate(model, row_id, **shifts):
    """Move a stored row's timestamps back by the given timedeltas (to seed history)."""
    with runtime.session() as db:
        row = db.get(model, row_id)
        for name, delta in shifts.items():
            setattr(row, name, getattr(row, name) - delta)
        db.commit()


def test_create_get_and_list_in_the_documented_shape(api, alice):
    conversation_id = create(api, alice, title="Customer Support Chat")
    assert isinstance(conversation_id, int)
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert details["id"] == conversation_id and details["title"] == "Customer Support Chat"
    assert details["user_id"] == alice["user_id"] and details["agent_id"] is None
    assert details["conversation_type"] == "chat" and details["status"] == "active"
    assert details["total_messages"] == 0 and details["created_at"].endswith("Z") and details["sessions"] == []
    listing = api.get("/chat/conversations", headers=alice.headers)
    assert listing.json()["message"] == "Found 1 conversation"
    data = envelope(listing)
    assert (data["total"], data["limit"], data["offset"]) == (1, 20, 0)
    item = data["conversations"][0]
    assert list(item)[:12] == ["id", "title", "user_id", "agent_id", "conversation_type", "status", "is_archived",
                               "is_pinned", "total_messages", "unread_count", "last_message_at", "created_at"]
    assert item["is_archived"] is False and item["is_pinned"] is False and item["unread_count"] == 0
    assert item["last_message_at"] is None


def test_create_defaults_and_conversation_type(api, alice):
    conversation_id = create(api, alice, conversation_type="support")
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert details["title"] == "New conversation" and details["conversation_type"] == "support"


def test_list_pinned_first_then_by_last_message_with_paging(api, alice):
    first, second, third = (create(api, alice, title=t) for t in ("first", "second", "third"))
    api.post(f"/chat/conversations/{first}/messages", json={"content": "bump"}, headers=alice.headers)
    envelope(api.put(f"/chat/conversations/{second}", json={"is_pinned": True}, headers=alice.headers))
    assert [c["id"] for c in conversations(api, alice)["conversations"]] == [second, first, third]
    page = conversations(api, alice, limit=1, offset=1)
    assert [c["id"] for c in page["conversations"]] == [first] and page["total"] == 3 and page["limit"] == 1
    assert [c["id"] for c in conversations(api, alice, pinned="true")["conversations"]] == [second]
    assert [c["id"] for c in conversations(api, alice, pinned="false")["conversations"]] == [first, third]


def test_archive_and_unarchive_by_flag_or_status(api, alice):
    kept, archived = create(api, alice), create(api, alice)
    envelope(api.put(f"/chat/conversations/{archived}", json={"is_archived": True}, headers=alice.headers))
    assert [c["id"] for c in conversations(api, alice)["conversations"]] == [kept]
    shelved = conversations(api, alice, archived="true")["conversations"]
    assert [c["id"] for c in shelved] == [archived]
    assert shelved[0]["is_archived"] is True and shelved[0]["status"] == "archived"
    envelope(api.put(f"/chat/conversations/{archived}", json={"status": "active"}, headers=alice.headers))
    details = envelope(api.get(f"/chat/conversations/{archived}", headers=alice.headers))
    assert details["status"] == "active" and details["is_archived"] is False


def test_update_answers_conversation_id_and_changes_fields(api, alice):
    conversation_id = create(api, alice, title="Old")
    data = envelope(api.put(f"/chat/conversations/{conversation_id}",
                            json={"title": "Updated Conversation Title", "is_pinned": True}, headers=alice.headers))
    assert data == {"conversation_id": conversation_id}
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert details["title"] == "Updated Conversation Title" and details["is_pinned"] is True


@pytest.mark.parametrize("body", [{}, {"title": ""}, {"title": None}, {"status": "deleted"},
                                  {"status": "active", "is_archived": True}, {"is_pinned": "maybe"}])
def test_update_rejects_bad_bodies(api, alice, body):
    conversation_id = create(api, alice)
    response = api.put(f"/chat/conversations/{conversation_id}", json=body, headers=alice.headers)
    envelope(response, 422)
    assert response.json()["errors"] and response.json()["message"].startswith("Invalid request")


def test_delete_hides_the_conversation_everywhere(api, alice):
    conversation_id = create(api, alice, title="Doomed")
    chat_uuid = next(c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()
                     if c["title"] == "Doomed")
    data = envelope(api.delete(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert data == {"conversation_id": conversation_id}
    envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers), 404)
    assert conversations(api, alice)["total"] == 0
    assert api.get(f"/api/v1/chat/chats/{chat_uuid}", headers=alice.headers).status_code == 404
    envelope(api.delete(f"/chat/conversations/{conversation_id}", headers=alice.headers), 404)


@pytest.mark.parametrize("body", [{"is_archived": True}, {"status": "active"}, {"title": "Renamed"}])
def test_an_update_racing_a_delete_does_not_bring_the_conversation_back(api, alice, monkeypatch, body):
    conversation_id = create(api, alice, title="Doomed")
    load = conversation_service.conversation_for_member

    def load_then_deleted_elsewhere(db, user, conversation_id):
        found = load(db, user, conversation_id)  # the PUT has read the chat ACTIVE and passed its checks
        with runtime.session() as other:
            other.get(Chat, conversation_id).status = "DELETED"
            other.commit()
        return found

    monkeypatch.setattr(conversation_service, "conversation_for_member", load_then_deleted_elsewhere)
    raced = api.put(f"/chat/conversations/{conversation_id}", json=body, headers=alice.headers)
    monkeypatch.undo()
    envelope(raced, 404)
    gone = api.put(f"/chat/conversations/{conversation_id}", json=body, headers=alice.headers)
    assert raced.json() == gone.json()
    with runtime.session() as db:
        assert db.get(Chat, conversation_id).status == "DELETED"


def test_a_change_racing_the_deletion_for_good_is_404(api, alice):
    """A conversation is a chat, which DELETE /v1/chat/sessions/{id} deletes for good: a PUT or
    DELETE that read it while that deletion was committing answers 404 like one sent after it
    (the stale row error was a 500)."""
    requests = {
        "PUT": lambda conversation_id: api.put(f"/chat/conversations/{conversation_id}", json={"title": "Renamed"},
                                               headers=alice.headers),
        "DELETE": lambda conversation_id: api.delete(f"/chat/conversations/{conversation_id}", headers=alice.headers),
    }
    for method, request in requests.items():
        conversation_id = create(api, alice, title="Doomed")
        raced = sent_while_deleting(Chat.__table__, conversation_id, lambda: request(conversation_id))
        assert (method, raced.status_code) == (method, 404)
        assert raced.json()["message"] == f"Conversation {conversation_id} not found"


def test_a_conversation_is_a_chat_of_the_other_surfaces(api, alice, make_chat):
    conversation_id = create(api, alice, title="Shared model")
    assert "Shared model" in [c["title"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()]
    make_chat(alice, title="Made on 000")
    titles = [c["title"] for c in conversations(api, alice)["conversations"]]
    assert titles == ["Made on 000", "Shared model"]
    assert conversation_id in [c["id"] for c in conversations(api, alice)["conversations"]]


@pytest.mark.parametrize("kind", [5, None, ["support"], {"name": "support"}])
def test_a_conversation_type_that_is_not_text_in_003_metadata_reads_as_chat(api, alice, kind):
    """003's chat_metadata is the client's own object: a `conversation_type` key that is not a string
    there must not break 002's answers (a string)."""
    made = api.post("/api/v1/chats", json={"title": "Typed on 003", "chat_metadata": {"conversation_type": kind}},
                    headers=alice.headers)
    assert made.status_code == 200, made.text
    chat_id = made.json()["id"]
    assert envelope(api.get(f"/chat/conversations/{chat_id}", headers=alice.headers))["conversation_type"] == "chat"
    assert [c["conversation_type"] for c in conversations(api, alice)["conversations"]] == ["chat"]
    shown = api.get(f"/api/v1/chats/{chat_id}", headers=alice.headers).json()["chat_metadata"]
    assert shown == {"conversation_type": kind}  # 003 shows its metadata as given


def test_only_participants_see_and_only_managers_change(api, alice, make_user):
    bob = make_user("bob")
    conversation_id = create(api, alice)
    for method in ("get", "put", "delete"):
        kwargs = {"json": {"title": "mine"}} if method == "put" else {}
        response = getattr(api, method)(f"/chat/conversations/{conversation_id}", headers=bob.headers, **kwargs)
        envelope(response, 403)
    envelope(api.get(f"/chat/conversations/{conversation_id}/messages", headers=bob.headers), 403)
    assert conversations(api, bob)["total"] == 0


def test_unknown_ids_and_routes_answer_404_in_the_envelope(api, alice):
    envelope(api.get("/chat/conversations/999999999", headers=alice.headers), 404)
    envelope(api.get("/chat/conversations/abc", headers=alice.headers), 404)
    envelope(api.get("/chat/conversations/1/nothing-here", headers=alice.headers), 404)
    envelope(api.get("/chat/analytics/nothing", headers=alice.headers), 404)
    for too_big in ("99999999999", "0"):  # beyond the integer keys: nothing, not a database error
        envelope(api.get(f"/chat/conversations/{too_big}", headers=alice.headers), 404)
        envelope(api.delete(f"/chat/agents/{too_big}", headers=alice.headers), 404)
    envelope(api.post("/chat/conversations", json={"agent_id": 99999999999}, headers=alice.headers), 422)
    envelope(api.get("/chat/conversations", params={"offset": 10**20}, headers=alice.headers), 422)


def test_405_in_the_envelope_with_allow(api, alice):
    response = api.patch("/chat/conversations", headers=alice.headers)
    envelope(response, 405)
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


@pytest.mark.parametrize("method,url", [
    ("get", "/chat/conversations"), ("post", "/chat/conversations"), ("get", "/chat/conversations/1"),
    ("put", "/chat/conversations/1"), ("delete", "/chat/conversations/1"), ("get", "/chat/conversations/1/messages"),
    ("post", "/chat/conversations/1/messages"), ("post", "/chat/conversations/1/ai-response"),
    ("get", "/chat/analytics/dashboard"), ("get", "/chat/analytics/global"), ("get", "/chat/search?query=x"),
    ("get", "/chat/agents"), ("post", "/chat/agents"),
])
def test_every_endpoint_needs_a_token_and_answers_401_in_the_envelope(api, method, url):
    response = getattr(api, method)(url)
    envelope(response, 401)
    assert response.json()["message"] == "Not authenticated" and response.headers["WWW-Authenticate"] == "Bearer"
    bad = getattr(api, method)(url, headers={"Authorization": "Bearer not-a-token"})
    assert envelope(bad, 401) is None and bad.json()["message"] == "Could not validate credentials"


def test_validation_errors_in_the_envelope(api, alice):
    response = api.post("/chat/conversations", json={"title": "x" * 201}, headers=alice.headers)
    envelope(response, 422)
    assert response.json()["errors"][0]["loc"] == ["body", "title"]
    assert "title" in response.json()["message"]
    envelope(api.post("/chat/conversations", content=b"not json", headers=alice.headers), 422)
    envelope(api.get("/chat/conversations", params={"limit": 0}, headers=alice.headers), 422)
    envelope(api.get("/chat/conversations", params={"limit": 101}, headers=alice.headers), 422)
    envelope(api.get("/chat/conversations", params={"offset": -1}, headers=alice.headers), 422)


def test_rate_limit_answers_429_in_the_envelope(api, make_user, monkeypatch):
    bob = make_user("bob")
    monkeypatch.setattr(runtime.current().settings, "rate_limit", "2/minute")
    statuses = [api.get("/chat/conversations", headers=bob.headers) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    envelope(statuses[2], 429)
    assert statuses[2].headers["Retry-After"]
    assert statuses[2].json()["message"] == "Too many requests (at most 2 per 1 minute)"


def test_other_surfaces_keep_their_own_error_body(api):
    assert api.get("/api/v1/chat/chats").json() == {"detail": "Not authenticated"}


def test_openapi_describes_every_answer_in_the_envelope(api):
    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    operations = [(path, op) for path, ops in spec["paths"].items() if path.startswith(PREFIXES) for op in ops.values()]
    assert len(operations) == 16
    for path, op in operations:
        success = [status for status in op["responses"] if status != "default" and int(status) < 400]
        assert success, f"{path}: no answer declared"
        for status in success:
            ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            envelope_schema = schemas[ref.rsplit("/", 1)[1]]
            assert ref.endswith("Envelope") and envelope_schema["required"] == ["success", "message", "data"]
            assert envelope_schema["properties"]["data"]["$ref"].startswith("#/components/schemas/conversations.")
        error = op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
        assert error.endswith("/conversations.EnvelopeError")
    codes = schemas["conversations.EnvelopeError"]["properties"]["error_code"]["enum"]
    assert "no_api_key" in codes and "cancelled" in codes
