"""Conversations API (002): the AI response through the RQ pipeline, agents' models and prompts, cost."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from models import Chat, Message
from tests.api.test_conversations import create, envelope
from tests.api.test_conversations_messages import add, messages
from tests.conftest import wait_for
from workers import runtime
from workers.pricing import DEFAULT_PRICES, cost_of


def ask(api, account, conversation_id, message="Explain ML", status=200, **body):
    response = api.post(f"/chat/conversations/{conversation_id}/ai-response", json={"message": message, **body},
                        headers=account.headers)
    return envelope(response, status), response.json()


def make_agent(api, account, **body):
    response = api.post("/chat/agents", json={"name": "Customer Service Agent", **body}, headers=account.headers)
    return envelope(response, 201)["agent_id"]


def stored(message_id):
    with runtime.session() as db:
        return db.get(Message, message_id)


def test_ai_response_in_the_documented_shape_with_cost(api, alice, fake_upstream):
    fake_upstream.configure(tokens=4)
    conversation_id = create(api, alice)
    data, body = ask(api, alice, conversation_id, include_context=True)
    assert body["message"] == "AI response generated"
    assert list(data)[:6] == ["message_id", "ai_response", "tokens_used", "processing_time", "cost", "created_at"]
    assert data["ai_response"] == "t0 t1 t2 t3 " and data["model"] == "gpt-3.5-turbo" and "cost_note" not in data
    assert data["tokens_used"] == 2 + 4  # the fake counts the prompt's words: "Explain ML"
    assert isinstance(data["processing_time"], float) and 0 <= data["processing_time"] < 5
    price = DEFAULT_PRICES["gpt-3.5-turbo"]
    assert data["cost"] == float(cost_of(price, 2, 4)) == 0.000007
    reply = stored(data["message_id"])
    assert (reply.tokens_in, reply.tokens_out, reply.cost) == (2, 4, Decimal("0.000007"))
    listed = messages(api, alice, conversation_id)["messages"]
    assert [(m["sender"], m["content"]) for m in listed] == [("user", "Explain ML"), ("agent", "t0 t1 t2 t3 ")]
    assert listed[1]["id"] == data["message_id"] and listed[1]["tokens_used"] == 6
    assert listed[1]["processing_time"] == data["processing_time"] and listed[1]["status"] == "delivered"
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert details["total_messages"] == 2 and details["sessions"][0]["messages_count"] == 2


def test_last_message_at_is_the_newest_listed_messages_time(api, alice, fake_upstream):
    """The reply is listed at its question's time; the conversation's last_message_at says the same,
    not the later time the reply ended."""
    fake_upstream.configure(first_delay_ms=50)
    conversation_id = create(api, alice)
    ask(api, alice, conversation_id)
    newest = messages(api, alice, conversation_id)["messages"][-1]["created_at"]
    listed = envelope(api.get("/chat/conversations", headers=alice.headers))["conversations"]
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert [c["last_message_at"] for c in listed if c["id"] == conversation_id] == [newest]
    assert details["last_message_at"] == newest


def test_include_context_false_sends_only_the_new_message(api, alice, fake_upstream):
    conversation_id = create(api, alice)
    add(api, alice, conversation_id, "earlier words")
    ask(api, alice, conversation_id, "with history")
    history = [m["content"] for m in fake_upstream.completions[-1]["body"]["messages"]]
    assert history == ["earlier words", "with history"]
    ask(api, alice, conversation_id, "on its own", include_context=False)
    assert fake_upstream.completions[-1]["body"]["messages"] == [{"role": "user", "content": "on its own"}]


def test_the_conversations_agent_sets_model_prompt_and_temperature(api, alice, fake_upstream):
    agent_id = make_agent(api, alice, model="gpt-4", system_prompt="You are a support agent.", temperature=0.2)
    conversation_id = create(api, alice, title="Support", agent_id=agent_id)
    data, _ = ask(api, alice, conversation_id, "Where is my order?")
    request = fake_upstream.completions[-1]["body"]
    assert request["model"] == "gpt-4" and request["temperature"] == 0.2
    assert request["messages"][0] == {"role": "system", "content": "You are a support agent."}
    assert data["model"] == "gpt-4"
    assert data["cost"] == float(cost_of(DEFAULT_PRICES["gpt-4"], 9, 8))  # 5 + 4 prompt words, 8 tokens
    # the agent keeps the system prompt even without history
    ask(api, alice, conversation_id, "Alone", include_context=False)
    assert [m["role"] for m in fake_upstream.completions[-1]["body"]["messages"]] == ["system", "user"]


def test_the_agent_answers_on_every_surface(api, alice, fake_upstream):
    agent_id = make_agent(api, alice, model="gpt-4o-mini", system_prompt="Be brief.")
    conversation_id = create(api, alice, title="Cross-surface", agent_id=agent_id)
    chat_uuid = next(c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()
                     if c["title"] == "Cross-surface")
    sent = api.post(f"/api/v1/chat/chats/{chat_uuid}/messages", json={"content": "hi"}, headers=alice.headers)
    assert sent.status_code == 200
    wait_for(lambda: fake_upstream.completions)
    request = fake_upstream.completions[-1]["body"]
    assert request["model"] == "gpt-4o-mini" and request["messages"][0]["content"] == "Be brief."
    reply = wait_for(lambda: [m for m in messages(api, alice, conversation_id)["messages"]
                              if m["sender"] == "agent" and m["status"] == "delivered"])[0]
    assert stored(reply["id"]).model == "gpt-4o-mini" and stored(reply["id"]).cost is not None


def test_agent_id_in_the_request_answers_that_reply_only(api, alice, fake_upstream):
    usual = make_agent(api, alice, model="gpt-4", system_prompt="Usual.")
    other = make_agent(api, alice, name="Specialist", model="gpt-4o-mini", system_prompt="Special.")
    conversation_id = create(api, alice, agent_id=usual)
    assert ask(api, alice, conversation_id, "one", agent_id=other)[0]["model"] == "gpt-4o-mini"
    assert fake_upstream.completions[-1]["body"]["messages"][0]["content"] == "Special."
    assert ask(api, alice, conversation_id, "two")[0]["model"] == "gpt-4"
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert details["agent_id"] == usual


def test_unpriced_model_costs_zero_with_a_note_until_priced(api, alice, fake_upstream, monkeypatch):
    fake_upstream.configure(models=["gpt-3.5-turbo", "house-model"], tokens=3)
    agent_id = make_agent(api, alice, model="house-model")
    conversation_id = create(api, alice, agent_id=agent_id)
    data, _ = ask(api, alice, conversation_id, "price me")
    assert data["cost"] == 0 and "house-model" in data["cost_note"]
    assert stored(data["message_id"]).cost is None
    monkeypatch.setattr(runtime.current().settings, "model_prices", "house-model=0.5/1.5")
    data, _ = ask(api, alice, conversation_id, "price me", include_context=False)
    assert data["cost"] == (2 * 0.5 + 3 * 1.5) / 1000 and "cost_note" not in data


def test_slow_reply_answers_504_and_is_still_stored(api, alice, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "ai_message_wait_s", 0.5)
    fake_upstream.configure(tokens=3, first_delay_ms=1500)
    conversation_id = create(api, alice)
    data, body = ask(api, alice, conversation_id, "slow", status=504)
    assert data["message_id"] and "did not finish" in body["message"]
    done = wait_for(lambda: stored(data["message_id"]).status == "DELIVERED" and stored(data["message_id"]))
    assert done.content == "t0 t1 t2 "


def test_failed_reply_answers_502_with_error_code(api, alice, fake_upstream):
    fake_upstream.configure(fail_status=500)
    conversation_id = create(api, alice)
    data, body = ask(api, alice, conversation_id, "fail", status=502)
    assert body["error_code"] == "upstream_error" and data["message_id"] and data["partial_content"] == ""
    assert stored(data["message_id"]).status == "FAILED"


def test_open_circuit_answers_503_with_error_code(api, alice, fake_upstream):
    fake_upstream.configure(fail_status=500)
    conversation_id = create(api, alice)
    for _ in range(5):  # the breaker opens after five failures
        ask(api, alice, conversation_id, "fail", status=502)
    data, body = ask(api, alice, conversation_id, "refused", status=503)
    assert body["error_code"] == "service_unavailable" and "circuit breaker open" in body["message"]
    assert stored(data["message_id"]).status == "FAILED"


@pytest.mark.parametrize("stopped_by", ["stop", "deleting the conversation"])
def test_a_reply_stopped_while_awaited_answers_409_with_what_it_wrote(api, alice, fake_upstream, stopped_by):
    fake_upstream.configure(tokens=200, delay_ms=50)
    conversation_id = create(api, alice)
    answer = {}
    asking = threading.Thread(target=lambda: answer.update(zip(("data", "body"), ask(
        api, alice, conversation_id, "long story", status=409))))
    asking.start()
    wait_for(lambda: fake_upstream.completions)  # the reply is being written
    if stopped_by == "stop":
        with runtime.session() as db:
            chat_uuid, reply_uuid = db.execute(
                select(Chat.uuid, Message.uuid).join(Message, Message.chat_id == Chat.id)
                .where(Chat.id == conversation_id, Message.status == "PROCESSING")).one()
        stopping = api.post(f"/api/v1/chat/chats/{chat_uuid}/messages/{reply_uuid}/stop", headers=alice.headers)
    else:
        stopping = api.delete(f"/chat/conversations/{conversation_id}", headers=alice.headers)
    assert stopping.status_code == 200
    asking.join(timeout=30)
    whole = "".join(f"t{i} " for i in range(200))
    assert answer["body"]["error_code"] == "cancelled" and answer["data"]["partial_content"] != whole
    assert whole.startswith(answer["data"]["partial_content"])
    assert stored(answer["data"]["message_id"]).status == "CANCELLED"


def test_no_api_key_answers_400(api, alice, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "openai_api_key", None)
    conversation_id = create(api, alice)
    _, body = ask(api, alice, conversation_id, "no key", status=400)
    assert body["error_code"] == "no_api_key" and "API key" in body["message"]


@pytest.mark.parametrize("body", [{"message": ""}, {"message": "  "}, {}, {"message": "x" * 50001},
                                  {"message": "hi", "include_context": "sometimes"},
                                  {"message": "hi", "agent_id": "x"}, {"message": "hi", "agent_id": 2**40}])
def test_ai_response_validation(api, alice, body):
    conversation_id = create(api, alice)
    response = api.post(f"/chat/conversations/{conversation_id}/ai-response", json=body, headers=alice.headers)
    envelope(response, 422)


def test_ai_response_access_and_unknown_agents(api, alice, make_user, fake_upstream):
    bob = make_user("bob")
    conversation_id = create(api, alice)
    ask(api, bob, conversation_id, status=403)
    ask(api, alice, 999999999, status=404)
    private = make_agent(api, bob, name="Bob's own")
    _, body = ask(api, alice, conversation_id, agent_id=private, status=404)
    assert "Agent" in body["message"]
    ask(api, alice, conversation_id, agent_id=999999999, status=404)
    assert fake_upstream.completions == []
