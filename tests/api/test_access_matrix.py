"""The access matrix: user B gets 403 or 404 from every route that takes one of A's resource ids.

Driven by the app's URL map, so a new route with a path parameter fails here until
`PATH_KINDS` (tests/api/access_resources.py) says which of A's resources fills it. B's
answers carry none of A's data, and A sees nothing changed after B's writes. WebSocket
routes are in test_access_matrix_streams.py.
"""
from __future__ import annotations

from typing import Any

import httpx
from flask import Flask

from tests.api.access_resources import NOT_A_RESOURCE, PATH_KINDS, World, error_reason, ok, snapshot
from tests.pdfs import text_pdf
from web.openapi import PUBLIC

SKIPPED = ("static", "rq_dashboard")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Listings that search: they look for the last word of A's marker (their answers echo it), and find it for A.
SEARCHES = {"conversations.search_messages": "query", "sessions.list_prompts": "search"}


def valid_bodies(intruder: dict) -> dict[str, dict[str, Any]]:
    """A valid body per route that takes one, so a 422 cannot answer before the access check."""
    return {
        "chat.ai_message": {"json": {"message": "B asks"}},
        "chat.send_message": {"json": {"content": "B was here"}},
        "chat.add_participant": {"json": {"user_id": intruder["id"]}},
        "sessions.upload": {"files": {"file": ("b.pdf", text_pdf(["B's page"]), "application/pdf")}},
        "sessions.update_prompt": {"json": {"title": "B's title"}},
        "conversations.update_conversation": {"json": {"title": "B's title"}},
        "conversations.add_message": {"json": {"content": "B was here"}},
        "conversations.ai_response": {"json": {"message": "B asks"}},
        "conversations.update_agent": {"json": {"name": "B's agent"}},
        "chats_v1.update_chat_status": {"json": {"status": "DELETED"}},
        "chats_v1.send_message": {"json": {"content": "B was here"}},
        "chats_v1.update_message_status": {"json": {"status": "READ"}},
        "chats_v1.add_reaction": {"json": {"reaction": "like"}},
        "admin_users.update_user": {"json": {"is_active": False}},
    }


def refusal_problems(response: httpx.Response, marker: str, allowed: tuple[int, ...] = (403, 404)) -> list[str]:
    """What is wrong with `response` as a refusal of B's request (empty when nothing is)."""
    problems = []
    if response.status_code not in allowed:
        problems.append(f"answered {response.status_code}, not {' or '.join(map(str, allowed))}: {response.text[:200]}")
    if marker in response.text:
        problems.append("the answer shows A's data")
    if error_reason(response) is None:
        problems.append(f"no detail in the surface's error body: {response.text[:200]!r}")
    return problems


def change_problems(world: World, label: str, baseline: dict[str, Any], kinds: set[str]) -> list[str]:
    """A's resources of `kinds` that differ from `baseline` (then updated, so each change is told once)."""
    after = snapshot(world.client, world.owned, kinds)
    changed = [kind for kind in after if after[kind] != baseline[kind]]
    baseline.update(after)
    return [f"{label}: changed A's {kind}" for kind in changed]


def test_every_rule_with_a_path_parameter_has_an_entry(app: Flask):
    problems = []
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(SKIPPED) or not rule.arguments:
            continue
        served[rule.endpoint] = rule
        kinds = PATH_KINDS.get(rule.endpoint)
        if kinds is None:
            problems.append(f"{rule.rule} ({rule.endpoint}) takes {sorted(rule.arguments)}: add it to PATH_KINDS")
        elif set(kinds) != rule.arguments:
            problems.append(f"{rule.rule} ({rule.endpoint}): PATH_KINDS names {sorted(kinds)}")
    problems += [f"PATH_KINDS names {endpoint}, which no rule serves" for endpoint in set(PATH_KINDS) - set(served)]
    assert not problems, "\n".join(problems)


def test_another_user_is_refused_on_every_route_with_a_resource_id(app: Flask, access_world: World):
    client, owned, intruder = access_world.client, access_world.owned, access_world.intruder
    bodies = valid_bodies(intruder)
    original = snapshot(client, owned)
    baseline, problems = dict(original), []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        kinds = set(PATH_KINDS.get(rule.endpoint, {}).values())
        if rule.endpoint.startswith(SKIPPED) or not kinds or NOT_A_RESOURCE in kinds or rule.websocket:
            continue
        url = owned.path(rule.rule, rule.endpoint)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.request(method, url, headers=intruder.headers, **bodies.get(rule.endpoint, {}))
            problems += [f"{method} {rule.rule}: {p}" for p in refusal_problems(response, owned.marker)]
            if method in WRITES:
                problems += change_problems(access_world, f"{method} {rule.rule}", baseline, kinds)
    assert not problems, "\n".join(problems)
    assert snapshot(client, owned) == original


def test_listings_show_another_user_nothing_of_the_owners(app: Flask, access_world: World):
    client, owned, intruder = access_world.client, access_world.owned, access_world.intruder
    problems, word = [], owned.marker.rsplit("-", 1)[1]
    for rule in app.url_map.iter_rules():
        if (rule.endpoint.startswith(SKIPPED) or rule.arguments or rule.endpoint in PUBLIC or rule.websocket
                or "GET" not in rule.methods):
            continue
        query = {SEARCHES[rule.endpoint]: word} if rule.endpoint in SEARCHES else {}
        response = client.get(rule.rule, params=query, headers=intruder.headers)
        if response.status_code >= 500 or owned.marker in response.text:
            problems.append(f"GET {rule.rule}: {response.status_code} {response.text[:200]}")
        if query:  # the search is one that finds A's data, for A
            assert owned.marker in client.get(rule.rule, params=query, headers=owned.owner.headers).text
    assert not problems, "\n".join(problems)


def test_ids_of_the_owners_in_bodies_and_query_strings_are_refused(access_world: World):
    """Routes that name a resource in the body or query string check it belongs to the caller."""
    client, owned, b = access_world.client, access_world.owned, access_world.intruder
    ids, h = owned.ids, b.headers
    chat = ok(client.post("/api/v1/chat/chats", json={"title": "B's chat"}, headers=h))["id"]
    conversation = ok(client.post("/chat/conversations", json={"title": "B's"}, headers=h), 201)["data"]["conversation_id"]
    chat_v1 = ok(client.post("/api/v1/chats", json={"title": "B's"}, headers=h))["id"]
    session = ok(client.post("/v1/chat/stream", headers=h, json={
        "model": "gpt-4", "stream": False, "messages": [{"role": "user", "content": "B asks"}]}))["session_id"]
    # (label, method, url, request arguments, A's kinds it names, answers that are refusals)
    cases: list[tuple[str, str, str, dict[str, Any], set[str], tuple[int, ...]]] = [
        ("switch model of A's session", "POST", "/v1/chat/switch-model",
         {"json": {"session_id": ids["session001"], "model": "gpt-4"}}, {"session001"}, (403, 404)),
        ("preview A's prompt", "POST", "/api/chat/prompts/preview",
         {"json": {"prompt_id": ids["prompt001"], "variables": {"text": "x"}}}, {"prompt001"}, (403, 404)),
        ("conversation with A's agent", "POST", "/chat/conversations",
         {"json": {"title": "B's", "agent_id": ids["agent002"]}}, {"agent002"}, (403, 404)),
        ("give B's conversation A's agent", "PUT", f"/chat/conversations/{conversation}",
         {"json": {"agent_id": ids["agent002"]}}, {"agent002"}, (403, 404)),
        ("ask A's agent", "POST", f"/chat/conversations/{conversation}/ai-response",
         {"json": {"message": "hi", "agent_id": ids["agent002"]}}, {"agent002"}, (403, 404)),
        ("dataset of A's document", "POST", "/datasets",
         {"json": {"name": "B's set", "document_ids": [ids["document004"]]}}, {"document004"}, (403, 404)),
        ("upload into A's dataset", "POST", "/documents/upload",
         {"files": {"file": ("b.txt", b"B's text", "text/plain")}, "data": {"dataset_id": ids["dataset004"]}},
         {"dataset004"}, (403, 404)),
        ("reply to A's message", "POST", f"/api/v1/chat/chats/{chat}/messages",
         {"json": {"content": "x", "reply_to_id": ids["reply000"]}}, {"chat000"}, (400, 404, 422)),
        ("stop A's reply from B's chat", "POST", f"/api/v1/chat/chats/{chat}/messages/{ids['reply000']}/stop",
         {}, {"chat000"}, (403, 404)),
        ("thread under A's message", "POST", f"/api/v1/chats/{chat_v1}/messages",
         {"json": {"content": "x", "parent_message_id": ids["message003"]}}, {"chat003"}, (400, 404, 422)),
        ("A's file in B's session", "GET", f"/api/chat/sessions/{session}/files/{ids['file001']}",
         {}, {"file001"}, (403, 404)),
        ("read A's thread", "GET", f"/api/v1/chats/{chat_v1}/messages?thread_id={ids['message003']}",
         {}, {"chat003"}, (403, 404)),
    ]
    baseline = snapshot(client, owned)
    problems = []
    for label, method, url, arguments, kinds, allowed in cases:
        response = client.request(method, url, headers=h, **arguments)
        problems += [f"{label}: {p}" for p in refusal_problems(response, owned.marker, allowed)]
        problems += change_problems(access_world, label, baseline, kinds)
    assert not problems, "\n".join(problems)


def test_the_users_own_key_routes_leave_the_owners_key_alone(access_world: World):
    """`/api/v1/users/me/api-keys/openai` takes no id: B's calls change and show only B's key."""
    client, owned, b = access_world.client, access_world.owned, access_world.intruder
    before = snapshot(client, owned, {"api_key"})
    assert before["api_key"]["is_set"] is True
    url = "/api/v1/users/me/api-keys/openai"
    assert ok(client.get(url, headers=b.headers))["is_set"] is False
    assert ok(client.put(url, json={"api_key": "sk-intruders-own-key"}, headers=b.headers))["last4"] == "-key"
    assert client.delete(url, headers=b.headers).status_code == 204
    assert snapshot(client, owned, {"api_key"}) == before
