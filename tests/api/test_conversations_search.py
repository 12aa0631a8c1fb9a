"""Conversations API (002): full-text message search (PostgreSQL tsvector or SQLite FTS5, whichever runs)."""
from __future__ import annotations

import pytest

from models import Message
from tests.api.test_conversations import create, envelope
from tests.api.test_conversations_messages import add
from web.services.search import fts5_query
from workers import runtime


def search(api, account, query, **params):
    response = api.get("/chat/search", params={"query": query, **params}, headers=account.headers)
    return envelope(response)


def contents(data):
    return [r["content"] for r in data["results"]]


@pytest.fixture
def shop(api, alice):
    """A conversation of alice's about orders and refunds."""
    conversation_id = create(api, alice, title="Shop")
    for line in ("I need help with my order", "Where is the refund for my broken kettle?",
                 "Ordering a new kettle today", "Thanks, that is all"):
        add(api, alice, conversation_id, line)
    return conversation_id


def test_search_in_the_documented_shape(api, alice, shop):
    response = api.get("/chat/search", params={"query": "kettle"}, headers=alice.headers)
    assert response.json()["message"] == "Found 2 results"
    data = envelope(response)
    assert data["query"] == "kettle" and data["total"] == 2 and data["limit"] == 20 and data["offset"] == 0
    result = data["results"][0]
    assert list(result) == ["message_id", "conversation_id", "content", "sender", "created_at"]
    assert result["conversation_id"] == shop and result["sender"] == "user" and result["created_at"].endswith("Z")


def test_words_match_their_forms(api, alice, shop):
    found = sorted(contents(search(api, alice, "orders")))
    assert found == ["I need help with my order", "Ordering a new kettle today"]
    assert contents(search(api, alice, "refunds")) == ["Where is the refund for my broken kettle?"]
    assert contents(search(api, alice, "KETTLES broken")) == ["Where is the refund for my broken kettle?"]
    assert search(api, alice, "teapot")["total"] == 0


def test_best_matches_first_then_newest(api, alice):
    conversation_id = create(api, alice)
    add(api, alice, conversation_id, "a long note that mentions the invoice only once among many other words here")
    add(api, alice, conversation_id, "invoice invoice invoice")
    add(api, alice, conversation_id, "the invoice")
    add(api, alice, conversation_id, "the invoice")
    ranked = search(api, alice, "invoice")["results"]
    assert ranked[0]["content"] == "invoice invoice invoice"
    assert ranked[-1]["content"].startswith("a long note")
    assert ranked[1]["message_id"] > ranked[2]["message_id"]  # equal rank: newest first


def test_chinese_japanese_and_korean_words_are_found_inside_longer_runs(api, alice):
    """Both text-search parsers take an unspaced run of these scripts as one word."""
    conversation_id = create(api, alice)
    for line in ("我们明天开会讨论预算", "明天见", "会議は午後三時からです", "내일 회의를 합니다", "Budget meeting 預算"):
        add(api, alice, conversation_id, line)
    assert contents(search(api, alice, "开会")) == ["我们明天开会讨论预算"]
    assert contents(search(api, alice, "明天")) == ["明天见", "我们明天开会讨论预算"]  # newest first
    assert contents(search(api, alice, "预算 明天")) == ["我们明天开会讨论预算"]  # every word
    assert contents(search(api, alice, "午後")) == ["会議は午後三時からです"]
    assert contents(search(api, alice, "회의")) == ["내일 회의를 합니다"]
    assert contents(search(api, alice, "預算 BUDGET")) == ["Budget meeting 預算"]  # case-insensitive
    assert search(api, alice, "会议")["total"] == 0
    assert contents(search(api, alice, "明天 -预算")) == ["明天见"]  # the same query syntax
    assert contents(search(api, alice, "开会 OR 午後")) == ["会議は午後三時からです", "我们明天开会讨论预算"]
    assert contents(search(api, alice, '"明天开会"')) == ["我们明天开会讨论预算"]
    assert search(api, alice, "・")["total"] == 0  # no words: nothing, as any query without words
    assert search(api, alice, "_算")["total"] == 0  # _ is text, not a LIKE wildcard


def test_query_syntax_phrases_or_and_exclusion(api, alice, shop):
    assert contents(search(api, alice, '"help with my order"')) == ["I need help with my order"]
    assert search(api, alice, '"order help"')["total"] == 0
    assert sorted(contents(search(api, alice, "refund OR thanks"))) == [
        "Thanks, that is all", "Where is the refund for my broken kettle?"]
    assert contents(search(api, alice, "kettle -refund")) == ["Ordering a new kettle today"]


@pytest.mark.parametrize("query", ['"', "'", "&", ":*", "OR", "order:*", '"unterminated order', "order & kettle",
                                   "order | kettle", "!order", "(order", "order)", "\\", "*", "NEAR(order kettle)",
                                   "order OR", "OR OR order", "- -", "kettle AND NOT", "col:order", "^order",
                                   "o'brien's order", "{order}", "order;DROP TABLE messages", "%_", "ü€😀",
                                   "'order' & 'kettle':*", "-order", "order\x00kettle"])
def test_query_syntax_never_fails(api, alice, shop, query):
    data = search(api, alice, query)
    assert data["query"] == query.replace("\x00", " ") and data["total"] == len(data["results"])


def test_special_characters_still_find_words(api, alice, shop):
    assert contents(search(api, alice, "order:*")) != []
    assert sorted(contents(search(api, alice, "'kettle' & 'broken'"))) == ["Where is the refund for my broken kettle?"]
    assert search(api, alice, '"')["total"] == 0 and search(api, alice, "OR")["total"] == 0


def test_only_messages_the_user_may_see(api, alice, make_user, make_chat, shop):
    bob = make_user("bob")
    bobs = create(api, bob)
    add(api, bob, bobs, "bob's secret order")
    assert "bob's secret order" not in contents(search(api, alice, "order"))
    assert contents(search(api, bob, "order")) == ["bob's secret order"]
    # a chat alice joins is searchable for her; a deleted one is not; an archived one still is
    group = make_chat(bob, chat_type="GROUP", title="Group")
    api.post(f"/api/v1/chat/chats/{group['id']}/participants", json={"user_id": alice["id"]}, headers=bob.headers)
    group_id = next(c["id"] for c in envelope(api.get("/chat/conversations", headers=bob.headers))["conversations"]
                    if c["title"] == "Group")
    add(api, bob, group_id, "group order")
    assert "group order" in contents(search(api, alice, "order"))
    api.put(f"/chat/conversations/{group_id}", json={"is_archived": True}, headers=bob.headers)
    assert "group order" in contents(search(api, alice, "order"))
    api.delete(f"/chat/conversations/{group_id}", headers=bob.headers)
    assert "group order" not in contents(search(api, alice, "order"))
    assert "group order" not in contents(search(api, bob, "order"))


def test_hidden_messages_are_not_found(api, alice, shop, fake_upstream):
    chat_uuid = next(c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()
                     if c["title"] == "Shop")
    answer = api.post(f"/api/v1/chat/chats/{chat_uuid}/ai-message",
                      json={"message": "confidential parcel", "save_to_history": False}, headers=alice.headers)
    assert answer.status_code == 200
    assert search(api, alice, "parcel")["total"] == 0


def test_edited_content_is_searched(api, alice, shop):
    first = search(api, alice, "kettle")["results"][0]
    with runtime.session() as db:
        db.get(Message, first["message_id"]).content = "now about a toaster"
        db.commit()
    assert contents(search(api, alice, "toaster")) == ["now about a toaster"]
    assert search(api, alice, "kettle")["total"] == 1


def test_paging_and_validation(api, alice, shop):
    everything = search(api, alice, "kettle OR order OR thanks")
    assert everything["total"] == 4
    page = search(api, alice, "kettle OR order OR thanks", limit=2, offset=2)
    assert page["total"] == 4 and [r["message_id"] for r in page["results"]] == [
        r["message_id"] for r in everything["results"][2:]]
    for params in ({"query": ""}, {"query": "   "}, {}, {"query": "x", "limit": 0}, {"query": "x", "limit": 101},
                   {"query": "x" * 501}, {"query": "x", "offset": -1}):
        envelope(api.get("/chat/search", params=params, headers=alice.headers), 422)


def test_fts5_query_translation():
    assert fts5_query("orders kettle") == '("orders" AND "kettle")'
    assert fts5_query('"help me" OR refund -kettle') == '("help me") OR (("refund") NOT "kettle")'
    assert fts5_query("order:* & 'x'") == '("order" AND "x")'
    assert fts5_query(': * OR -only') == ""
    assert fts5_query('"unterminated phrase') == '("unterminated phrase")'
