"""Conversations API (002): agents, their visibility and their conversations."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from models import Agent, User
from tests.api.test_conversations import create, envelope
from tests.api.test_conversations_ai import ask, make_agent
from tests.api.test_conversations_messages import team_with_bob
from tests.conftest import sent_while_deleting, wait_for
from workers import runtime


def make_admin(account):
    with runtime.session() as db:
        db.execute(update(User).where(User.id == account["user_id"]).values(role="admin"))
        db.commit()
    return account


def agent(api, account, agent_id, status=200):
    return envelope(api.get(f"/chat/agents/{agent_id}", headers=account.headers), status)


def test_create_get_update_delete(api, alice):
    agent_id = make_agent(api, alice, description="Answers orders", model="gpt-4", system_prompt="Help.",
                          temperature=0.3)
    data = agent(api, alice, agent_id)
    assert {k: data[k] for k in ("id", "name", "description", "model", "system_prompt", "temperature", "is_public",
                                 "owner_id")} == {
        "id": agent_id, "name": "Customer Service Agent", "description": "Answers orders", "model": "gpt-4",
        "system_prompt": "Help.", "temperature": 0.3, "is_public": False, "owner_id": alice["user_id"]}
    changed = api.put(f"/chat/agents/{agent_id}", json={"name": "Renamed", "model": None}, headers=alice.headers)
    assert envelope(changed) == {"agent_id": agent_id}
    data = agent(api, alice, agent_id)
    assert data["name"] == "Renamed" and data["model"] is None and data["system_prompt"] == "Help."
    assert envelope(api.delete(f"/chat/agents/{agent_id}", headers=alice.headers)) == {"agent_id": agent_id}
    agent(api, alice, agent_id, 404)


def test_list_shows_own_and_public_agents_with_paging(api, alice, make_user):
    admin = make_admin(make_user("admin"))
    bob = make_user("bob")
    mine = make_agent(api, alice, name="A mine")
    public = make_agent(api, admin, name="B public", is_public=True)
    make_agent(api, bob, name="C bobs")
    listing = envelope(api.get("/chat/agents", headers=alice.headers))
    names = [a["name"] for a in listing["agents"]]
    assert "A mine" in names and "B public" in names and "C bobs" not in names
    assert listing["total"] == len(names) and listing["limit"] == 20 and listing["offset"] == 0
    page = envelope(api.get("/chat/agents", params={"limit": 1}, headers=alice.headers))
    assert len(page["agents"]) == 1 and page["total"] == listing["total"]
    assert agent(api, bob, public)["name"] == "B public"
    agent(api, bob, mine, 404)


def test_agents_are_listed_by_name_whatever_its_case(api, make_user):
    carol = make_user("carol")
    for name in ("beta", "Alpha", "charlie", "Bravo"):
        make_agent(api, carol, name=name)
    agents = envelope(api.get("/chat/agents", params={"limit": 100}, headers=carol.headers))["agents"]
    listed = [a["name"] for a in agents]
    assert [n for n in listed if n in ("beta", "Alpha", "charlie", "Bravo")] == ["Alpha", "beta", "Bravo", "charlie"]


def test_only_admins_make_public_agents_and_only_owners_change_them(api, alice, make_user):
    admin = make_admin(make_user("admin"))
    envelope(api.post("/chat/agents", json={"name": "Everyone's", "is_public": True}, headers=alice.headers), 403)
    public = make_agent(api, admin, name="Shared", is_public=True)
    envelope(api.put(f"/chat/agents/{public}", json={"name": "Mine now"}, headers=alice.headers), 403)
    envelope(api.delete(f"/chat/agents/{public}", headers=alice.headers), 403)
    own = make_agent(api, alice)
    envelope(api.put(f"/chat/agents/{own}", json={"is_public": True}, headers=alice.headers), 403)
    envelope(api.put(f"/chat/agents/{own}", json={"description": "by admin"}, headers=admin.headers), 200)
    assert agent(api, alice, own)["description"] == "by admin"


def test_using_agents_in_conversations(api, alice, make_user):
    admin = make_admin(make_user("admin"))
    public = make_agent(api, admin, name="Shared", is_public=True)
    conversation_id = create(api, alice, agent_id=public)
    assert envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))["agent_id"] == public
    bobs = make_agent(api, make_user("bob"), name="Private")
    envelope(api.post("/chat/conversations", json={"agent_id": bobs}, headers=alice.headers), 404)
    envelope(api.put(f"/chat/conversations/{conversation_id}", json={"agent_id": bobs}, headers=alice.headers), 404)
    envelope(api.put(f"/chat/conversations/{conversation_id}", json={"agent_id": None}, headers=alice.headers))
    assert envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))["agent_id"] is None


def test_deleting_an_agent_leaves_its_conversations_without_one(api, alice):
    agent_id = make_agent(api, alice)
    conversation_id = create(api, alice, agent_id=agent_id)
    envelope(api.delete(f"/chat/agents/{agent_id}", headers=alice.headers))
    details = envelope(api.get(f"/chat/conversations/{conversation_id}", headers=alice.headers))
    assert details["agent_id"] is None


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": "t", "temperature": 2.5},
                                  {"name": "t", "model": "no-such-model"}, {"name": "t", "is_public": "perhaps"}])
def test_agent_validation(api, alice, body):
    response = api.post("/chat/agents", json=body, headers=alice.headers)
    envelope(response, 422)
    assert response.json()["errors"]


def test_agent_update_validation_and_unknown_ids(api, alice):
    agent_id = make_agent(api, alice)
    for body in ({}, {"name": None}, {"temperature": -1}, {"model": "no-such-model"}):
        envelope(api.put(f"/chat/agents/{agent_id}", json=body, headers=alice.headers), 422)
    envelope(api.put("/chat/agents/999999999", json={"name": "x"}, headers=alice.headers), 404)
    envelope(api.delete("/chat/agents/999999999", headers=alice.headers), 404)
    envelope(api.patch(f"/chat/agents/{agent_id}", headers=alice.headers), 405)



def test_an_agent_answers_while_the_conversations_owner_may_use_it(api, alice, make_user, make_chat, fake_upstream):
    """A public agent made private again is 404 for alice, and no longer answers in her conversation: its
    own model and prompt do, and the reply is not the agent's. Alice's private agent, 404 for bob, answers
    him in her conversation he takes part in (she chose it for the conversation), on 002 and on 000."""
    admin = make_admin(make_user("admin"))
    was_public = make_agent(api, admin, name="Was public", model="gpt-4", system_prompt="Admin's prompt.",
                            is_public=True)
    conversation_id = create(api, alice, agent_id=was_public)
    envelope(api.put(f"/chat/agents/{was_public}", json={"is_public": False}, headers=admin.headers))
    agent(api, alice, was_public, 404)
    assert ask(api, alice, conversation_id)[0]["model"] == "gpt-3.5-turbo"
    assert [m["role"] for m in fake_upstream.completions[-1]["body"]["messages"]] == ["user"]

    private = make_agent(api, alice, name="Alice's own", model="gpt-4", system_prompt="Alice's prompt.")
    bob, team = team_with_bob(api, alice, make_user, make_chat)
    envelope(api.put(f"/chat/conversations/{team['id']}", json={"agent_id": private}, headers=alice.headers))
    agent(api, bob, private, 404)
    assert ask(api, bob, team["id"])[0]["model"] == "gpt-4"
    assert fake_upstream.completions[-1]["body"]["messages"][0] == {"role": "system", "content": "Alice's prompt."}
    team_uuid = next(c["id"] for c in api.get("/api/v1/chat/chats", headers=bob.headers).json() if c["title"] == "Team")
    sent = api.post(f"/api/v1/chat/chats/{team_uuid}/messages", json={"content": "On 000"}, headers=bob.headers)
    assert sent.status_code == 200, sent.text  # the chat API (000) starts the reply the same way
    request = wait_for(lambda: [c["body"] for c in fake_upstream.completions
                                if c["body"]["messages"][-1]["content"] == "On 000"])[0]
    assert request["model"] == "gpt-4" and request["messages"][0] == {"role": "system", "content": "Alice's prompt."}
    dashboard = envelope(api.get("/chat/analytics/dashboard", headers=alice.headers))
    assert dashboard["most_active_agent"]["agent_id"] == private


def test_an_agent_deleted_while_a_conversation_takes_it_is_404(api, alice):
    """Creating or changing a conversation with an agent whose deletion was committing as it ran:
    404 like an agent deleted before, not the chat's foreign key error (a 500), and nothing kept."""
    conversation_id = create(api, alice, title="Keeps its agent")
    requests = {
        "POST": lambda agent_id: api.post("/chat/conversations", json={"title": "New", "agent_id": agent_id},
                                          headers=alice.headers),
        "PUT": lambda agent_id: api.put(f"/chat/conversations/{conversation_id}", json={"agent_id": agent_id},
                                        headers=alice.headers),
    }
    for method, request in requests.items():
        agent_id = make_agent(api, alice)
        raced = sent_while_deleting(Agent.__table__, agent_id, lambda: request(agent_id))
        assert (method, raced.status_code) == (method, 404)
        assert raced.json()["message"] == f"Agent {agent_id} not found"
    listed = envelope(api.get("/chat/conversations", headers=alice.headers))
    assert [(c["title"], c["agent_id"]) for c in listed["conversations"]] == [("Keeps its agent", None)]


def test_an_edit_racing_the_agents_deletion_is_404(api, alice):
    """The PUT read the agent while its deletion was committing: 404 as after it, not the stale
    row error (a 500)."""
    agent_id = make_agent(api, alice)
    raced = sent_while_deleting(Agent.__table__, agent_id, lambda: api.put(
        f"/chat/agents/{agent_id}", json={"name": "Renamed"}, headers=alice.headers))
    assert raced.status_code == 404 and raced.json()["message"] == f"Agent {agent_id} not found"


def test_a_delete_racing_another_delete_is_404(api, alice):
    """Two DELETEs at once: the one that finds the agent gone is 404, as after it (both were 200)."""
    agent_id = make_agent(api, alice)
    raced = sent_while_deleting(Agent.__table__, agent_id, lambda: api.delete(
        f"/chat/agents/{agent_id}", headers=alice.headers))
    assert raced.status_code == 404 and raced.json()["message"] == f"Agent {agent_id} not found"
