"""Conversations API (002): the user's dashboard and the admins' global analytics, on seeded history."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import event, func, select

from models import Agent, Chat, Message, Participant, User
from tests.api.test_conversations import envelope
from tests.api.test_conversations_agents import make_admin
from workers import runtime

NOW = datetime.now(timezone.utc)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def seed_agent(owner, name: str) -> int:
    with runtime.session() as db:
        agent = Agent(owner_id=owner["user_id"], name=name, created_at=NOW, updated_at=NOW)
        db.add(agent)
        db.commit()
        return agent.id


def msg(role: str, days: float, status: str = "DELIVERED", ms: int | None = None, agent: int | None = None,
        hidden: bool = False) -> dict:
    """A message to seed: sent `days` ago, taking `ms` to generate, asked of `agent` (metadata)."""
    return {"role": role, "days": days, "status": status, "ms": ms, "agent": agent, "hidden": hidden}


def seed_chat(owner, days: float, agent_id: int | None = None, status: str = "ACTIVE", members=(),
              messages=()) -> int:
    """A chat made `days` ago by `owner` with `members` and `messages` (see msg)."""
    with runtime.session() as db:
        chat = Chat(owner_id=owner["user_id"], title="seeded", agent_id=agent_id, status=status,
                    created_at=ago(days), updated_at=ago(days), last_activity_at=ago(days))
        chat.participants.append(Participant(user_id=owner["user_id"], role="OWNER", joined_at=ago(days)))
        chat.participants.extend(Participant(user_id=m["user_id"], role="MEMBER", joined_at=ago(days)) for m in members)
        db.add(chat)
        db.flush()
        for m in messages:
            db.add(Message(chat_id=chat.id, role=m["role"], content="seeded", status=m["status"],
                           processing_time_ms=m["ms"], meta={"agent_id": m["agent"]} if m["agent"] else None,
                           hidden=m["hidden"], sender_id=owner["user_id"] if m["role"] == "user" else None,
                           created_at=ago(m["days"]), updated_at=ago(m["days"])))
        db.commit()
        return chat.id


def dashboard(api, account):
    return envelope(api.get("/chat/analytics/dashboard", headers=account.headers))


def global_stats(api, account):
    return envelope(api.get("/chat/analytics/global", headers=account.headers))


def test_dashboard_on_history_across_days_and_users(api, alice, make_user):
    bob = make_user("bob")
    helper, specialist = seed_agent(alice, "Helper"), seed_agent(alice, "Specialist")
    seed_chat(alice, 0, helper, messages=[
        msg("user", 0), msg("assistant", 0, ms=1000), msg("assistant", 0, ms=3000),
        msg("user", 0, hidden=True)])  # a hidden message counts nowhere
    seed_chat(alice, 3, messages=[
        msg("user", 3), msg("assistant", 3, ms=2000, agent=specialist),
        msg("assistant", 2, "FAILED", ms=9000, agent=specialist)])
    seed_chat(alice, 40, helper, messages=[msg("user", 40), msg("assistant", 40, ms=2000)])
    seed_chat(alice, 0, helper, status="DELETED", messages=[msg("user", 0), msg("assistant", 0, ms=50000)])
    seed_chat(bob, 0, messages=[msg("user", 0), msg("user", 1)])  # bob's own: not alice's
    seed_chat(bob, 1, members=[alice], messages=[msg("user", 1)])  # alice takes part: hers too

    data = dashboard(api, alice)
    assert data["total_conversations"] == 4
    assert data["total_messages"] == 3 + 3 + 2 + 1
    assert data["average_response_time"] == round((1000 + 3000 + 2000 + 2000) / 4 / 1000, 3)
    assert data["most_active_agent"] == {"agent_id": helper, "name": "Helper", "message_count": 3}
    days = data["daily_stats"]
    today = NOW.date()
    assert len(days) == 30 and days[-1]["date"] == today.isoformat()
    assert days[0]["date"] == (today - timedelta(days=29)).isoformat()
    by_day = {d["date"]: (d["conversations"], d["messages"]) for d in days}
    assert by_day[today.isoformat()] == (1, 3)
    assert by_day[(today - timedelta(days=1)).isoformat()] == (1, 1)
    assert by_day[(today - timedelta(days=2)).isoformat()] == (0, 1)
    assert by_day[(today - timedelta(days=3)).isoformat()] == (1, 2)
    assert sum(c for c, _ in by_day.values()) == 3 and sum(m for _, m in by_day.values()) == 7
    assert all(by_day[d["date"]] == (0, 0) for d in days[:-4])


def test_analytics_are_aggregated_by_the_database(api, make_user):
    admin = make_admin(make_user("admin"))
    seed_chat(admin, 0, messages=[msg("user", 0), msg("assistant", 0, ms=10)] * 20)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))

    engine = runtime.current().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        dashboard(api, admin)
        global_stats(api, admin)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    reading_messages = [s for s in statements if "FROM messages" in s or "JOIN messages" in s]
    assert sum("GROUP BY" in s for s in statements) >= 4
    assert reading_messages and all(any(f in s for f in ("count(", "avg(")) for s in reading_messages)


def test_dashboard_of_a_new_user_is_zeros(api, make_user):
    data = dashboard(api, make_user("new"))
    assert (data["total_conversations"], data["total_messages"], data["average_response_time"]) == (0, 0, 0.0)
    assert data["most_active_agent"] is None
    assert len(data["daily_stats"]) == 30 and all(d["conversations"] == d["messages"] == 0 for d in data["daily_stats"])


def test_dashboard_counts_conversations_made_through_the_api(api, alice, fake_upstream):
    conversation_id = envelope(api.post("/chat/conversations", json={}, headers=alice.headers), 201)["conversation_id"]
    response = api.post(f"/chat/conversations/{conversation_id}/ai-response", json={"message": "hi"},
                        headers=alice.headers)
    envelope(response)
    data = dashboard(api, alice)
    assert data["total_conversations"] == 1 and data["total_messages"] == 2
    assert data["daily_stats"][-1] == {"date": NOW.date().isoformat(), "conversations": 1, "messages": 2}
    assert data["average_response_time"] == response.json()["data"]["processing_time"]


def test_global_analytics_is_for_admins_only(api, alice):
    response = api.get("/chat/analytics/global", headers=alice.headers)
    envelope(response, 403)
    assert response.json()["message"] == "Admin access required"


def test_global_totals_and_top_agents(api, make_user):
    admin = make_admin(make_user("admin"))
    alice, bob = make_user("alice"), make_user("bob")
    before = global_stats(api, admin)
    busy, steady = seed_agent(alice, "Busy agent"), seed_agent(bob, "Customer Service Agent")
    for _ in range(14):
        seed_chat(alice, 1, busy)
    seed_chat(alice, 2, busy, messages=[msg("assistant", 2, status) for status in
                                        ("DELIVERED",) * 4 + ("FAILED", "CANCELLED", "PROCESSING")])
    seed_chat(alice, 0, busy, status="DELETED")  # not served any more
    seed_chat(bob, 0, steady, messages=[msg("assistant", 0)] * 191 + [msg("assistant", 0, "FAILED")] * 9)
    for _ in range(12):
        seed_chat(bob, 0, messages=[msg("assistant", 0, agent=steady)])  # asked of it; the chat has no agent

    after = global_stats(api, admin)
    assert after["total_conversations_all_users"] - before["total_conversations_all_users"] == 15 + 1 + 12
    assert after["total_messages_all_users"] - before["total_messages_all_users"] == 7 + 200 + 12
    with runtime.session() as db:
        users = db.scalar(select(func.count(User.id)))
    assert after["average_conversations_per_user"] == round(after["total_conversations_all_users"] / users, 2)
    top = {a["agent_id"]: a for a in after["top_performing_agents"]}
    assert top[busy] == {"agent_id": busy, "name": "Busy agent", "total_conversations": 15, "success_rate": 66.7}
    assert top[steady] == {"agent_id": steady, "name": "Customer Service Agent", "total_conversations": 13,
                           "success_rate": round(100 * (191 + 12) / (200 + 12), 1)}
    order = [a["agent_id"] for a in after["top_performing_agents"]]
    assert order.index(busy) < order.index(steady) and len(order) <= 10


def test_success_rate_of_an_agent_without_replies_is_zero(api, make_user):
    admin = make_admin(make_user("admin"))
    idle = seed_agent(admin, "Idle agent")
    for _ in range(20):
        seed_chat(admin, 0, idle)
    top = {a["agent_id"]: a for a in global_stats(api, admin)["top_performing_agents"]}
    assert top[idle]["total_conversations"] == 20 and top[idle]["success_rate"] == 0.0


def test_messages_typed_as_the_agent_are_not_its_replies(api, alice, make_user):
    """`sender_type: "agent"` stores what a user typed as the agent: no reply of the agent was generated."""
    admin = make_admin(make_user("admin"))
    agent = seed_agent(alice, "Typed agent")
    conversation = envelope(api.post("/chat/conversations", json={"agent_id": agent}, headers=alice.headers),
                            201)["conversation_id"]
    for _ in range(3):
        envelope(api.post(f"/chat/conversations/{conversation}/messages",
                          json={"content": "typed", "sender_type": "agent"}, headers=alice.headers), 201)
    assert dashboard(api, alice)["most_active_agent"] is None
    top = {a["agent_id"]: a for a in global_stats(api, admin)["top_performing_agents"]}
    assert top.get(agent, {"success_rate": 0.0})["success_rate"] == 0.0  # (only the top ten are listed)


def test_a_reply_stays_with_the_agent_that_answered_it_when_the_conversation_changes_agent(api, make_user,
                                                                                          fake_upstream):
    """A reply belongs to the conversation's agent when it was asked, not to whichever agent the
    conversation has when the analytics are read."""
    admin = make_admin(make_user("admin"))
    first, second = seed_agent(admin, "First agent"), seed_agent(admin, "Second agent")
    conversation = envelope(api.post("/chat/conversations", json={"agent_id": first}, headers=admin.headers),
                            201)["conversation_id"]
    envelope(api.post(f"/chat/conversations/{conversation}/ai-response", json={"message": "hi"},
                      headers=admin.headers))
    envelope(api.put(f"/chat/conversations/{conversation}", json={"agent_id": second}, headers=admin.headers))
    assert dashboard(api, admin)["most_active_agent"] == {"agent_id": first, "name": "First agent",
                                                          "message_count": 1}
    for agent in (first, second):  # enough conversations to be in the global top ten whatever other tests made
        for _ in range(40):
            seed_chat(admin, 0, agent)
    top = {a["agent_id"]: a for a in global_stats(api, admin)["top_performing_agents"]}
    assert top[first]["total_conversations"] == 41 and top[first]["success_rate"] == 100.0  # it replied there
    assert top[second]["total_conversations"] == 41 and top[second]["success_rate"] == 0.0  # it never replied
    envelope(api.put(f"/chat/conversations/{conversation}", json={"agent_id": None}, headers=admin.headers))
    assert dashboard(api, admin)["most_active_agent"]["agent_id"] == first


def test_success_rate_counts_only_replies_the_other_figures_count(api, make_user):
    """Replies in deleted conversations and hidden replies count in no total: nor in success_rate."""
    admin = make_admin(make_user("admin"))
    agent = seed_agent(admin, "Rated agent")
    seed_chat(admin, 0, agent, messages=[msg("assistant", 0)] * 3 + [msg("assistant", 0, "FAILED", hidden=True)])
    seed_chat(admin, 0, agent, status="DELETED", messages=[msg("assistant", 0, "FAILED")] * 5)
    for _ in range(40):  # enough conversations to be in the global top ten whatever other tests made
        seed_chat(admin, 0, agent)
    top = {a["agent_id"]: a for a in global_stats(api, admin)["top_performing_agents"]}
    assert top[agent]["total_conversations"] == 41 and top[agent]["success_rate"] == 100.0


def test_a_members_dashboard_names_no_agent_the_member_cannot_see(api, alice, make_user):
    """The owner's private agent answered in a conversation bob takes part in: his busiest agent is
    one he can see (404 for the other), never the private one's name."""
    bob, admin = make_user("bob"), make_admin(make_user("admin"))
    private, public = seed_agent(alice, "Alice's secret agent"), seed_agent(admin, "Shared agent")
    with runtime.session() as db:
        db.get(Agent, public).is_public = True
        db.commit()
    seed_chat(alice, 0, private, members=[bob], messages=[msg("assistant", 0)] * 3)
    seed_chat(bob, 0, public, messages=[msg("assistant", 0)])
    assert dashboard(api, alice)["most_active_agent"]["agent_id"] == private
    assert dashboard(api, bob)["most_active_agent"] == {"agent_id": public, "name": "Shared agent",
                                                        "message_count": 1}
