"""The access matrix over WebSocket and SSE: bad tokens and user B are refused before any event.

Every WebSocket route of the URL map, with the token in `?token=` or the Authorization
header: a bad token closes with 4401 and its reason, B with 4403 or 4404, before any event.
The SSE routes (`POST /v1/chat/stream`, `POST` and `GET /chat/send` with the token in the
header, `?auth_token=` or `?token=`) answer 401 or 404 in JSON, never an event stream, and
B cannot continue A's streams with A's `Last-Event-ID`.
"""
from __future__ import annotations

import json
from typing import Any

import httpx
import websocket
from flask import Flask

from tests.api.access_resources import REASONS, World, error_reason, ok, snapshot
from tests.conftest import Socket

STREAM_BODY = {"model": "gpt-4", "messages": [{"role": "user", "content": "B asks"}]}


def first_frame(url: str, header: list[str]) -> tuple[int, int | None, str]:
    """The opcode of the socket's first frame, and its close code and reason when it is a close."""
    ws = websocket.create_connection(url, timeout=5, header=header)
    try:
        opcode, data = ws.recv_data()
    finally:
        ws.close()
    if opcode != websocket.ABNF.OPCODE_CLOSE or len(data) < 2:
        return opcode, None, data.decode("utf-8", "replace")
    return opcode, int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


def placements(token: str | None) -> dict[str, tuple[str, list[str]]]:
    """Where a socket client may put its token: (query string, headers) for each."""
    if token is None:
        return {"": ("", [])}
    return {"?token=": (f"?token={token}", []), "header": ("", [f"Authorization: Bearer {token}"])}


def socket_urls(app: Flask, server: str, world: World) -> dict[str, str]:
    base = server.replace("http://", "ws://")
    return {rule.rule: base + world.owned.path(rule.rule, rule.endpoint)
            for rule in app.url_map.iter_rules() if rule.websocket}


def test_sockets_close_before_any_event_for_bad_tokens_and_other_users(app: Flask, server: str, access_world: World,
                                                                       bad_tokens):
    urls = socket_urls(app, server, access_world)
    assert len(urls) >= 2
    owner, intruder, marker = access_world.owned.owner, access_world.intruder, access_world.owned.marker
    problems = []
    for rule, url in urls.items():
        for placement, (query, header) in placements(owner["access_token"]).items():
            opcode, _, text = first_frame(url + query, header)
            assert opcode == websocket.ABNF.OPCODE_TEXT and '"welcome"' in text, f"{rule} {placement}: A not let in"
        for kind, token in bad_tokens.items():
            for placement, (query, header) in placements(token).items():
                _, code, reason = first_frame(url + query, header)
                if code != 4401 or REASONS[kind] not in reason:
                    problems.append(f"{rule}, {kind} {placement}: first frame {code} {reason!r}, not 4401")
        for placement, (query, header) in placements(intruder["access_token"]).items():
            _, code, reason = first_frame(url + query, header)
            if code not in (4403, 4404) or not reason or marker in reason:
                problems.append(f"{rule}, user B {placement}: first frame {code} {reason!r}, not 4403/4404")
    assert not problems, "\n".join(problems)


def sse_answer(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """An SSE route's answer, read to its end."""
    with client.stream(method, url, **kwargs) as response:
        response.read()
    return response


def refused(response: httpx.Response, statuses: tuple[int, ...], says: str = "") -> bool:
    """A refusal in JSON, not an event stream, with a reason (that contains `says`)."""
    reason = error_reason(response)
    return (response.status_code in statuses and response.headers.get("content-type", "").startswith("application/json")
            and reason is not None and says in reason)


def sse_requests(token: str | None) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each way of asking an SSE route to stream, with `token` where that way puts it."""
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    asked = {"message": "B asks"}
    return {
        "POST /v1/chat/stream": ("POST", "/v1/chat/stream", {"json": STREAM_BODY, "headers": bearer}),
        "POST /chat/send": ("POST", "/chat/send", {"json": asked, "headers": bearer}),
        "GET /chat/send ?auth_token=": ("GET", "/chat/send", {"params": {**asked, "auth_token": token or ""}}),
        "GET /chat/send ?token=": ("GET", "/chat/send", {"params": {**asked, "token": token or ""}}),
    }


def test_sse_routes_refuse_bad_tokens_without_streaming(access_world: World, bad_tokens, fake_upstream):
    problems = []
    for kind, token in bad_tokens.items():
        for label, (method, url, kwargs) in sse_requests(token).items():
            response = sse_answer(access_world.client, method, url, **kwargs)
            if not refused(response, (401,), REASONS[kind]):
                problems.append(f"{label}, {kind}: {response.status_code} {response.text[:200]!r}")
    assert not problems, "\n".join(problems)
    assert fake_upstream.completions == []  # no reply was started


def test_sse_routes_refuse_another_user_the_owners_sessions_and_streams(access_world: World):
    client, owned, b = access_world.client, access_world.owned, access_world.intruder
    ids, events = owned.ids, owned.last_event_ids
    with client.stream("POST", "/v1/chat/stream", json=STREAM_BODY, headers=b.headers) as own:
        own.read()
        own_session = own.headers["X-Session-Id"]
    a_session, a_reply, a_position = events["001"].split(":")
    bearer, query = b.headers, {"auth_token": b["access_token"]}
    attempts = {
        "001 with A's session": ("POST", "/v1/chat/stream", {"json": {**STREAM_BODY, "session_id": ids["session001"]},
                                                            "headers": bearer}),
        "001 resuming A's stream": ("POST", "/v1/chat/stream",
                                    {"json": STREAM_BODY, "headers": {**bearer, "Last-Event-ID": events["001"]}}),
        "001 resuming A's reply in B's session": ("POST", "/v1/chat/stream", {"json": STREAM_BODY, "headers": {
            **bearer, "Last-Event-ID": f"{own_session}:{a_reply}:{a_position}"}}),
        "004 POST with A's session": ("POST", "/chat/send", {"json": {"message": "B asks",
                                                                     "session_id": ids["session004"]}, "headers": bearer}),
        "004 GET with A's session": ("GET", "/chat/send", {"params": {**query, "message": "B asks",
                                                                     "session_id": ids["session004"]}}),
        "004 GET ?token= with A's session": ("GET", "/chat/send", {"params": {
            "token": b["access_token"], "message": "B asks", "session_id": ids["session004"]}}),
        "004 with A's dataset": ("POST", "/chat/send", {"json": {"message": "B asks", "dataset_id": ids["dataset004"]},
                                                        "headers": bearer}),
        "004 POST resuming A's stream": ("POST", "/chat/send", {"json": {"message": "B asks"},
                                                                "headers": {**bearer, "Last-Event-ID": events["004"]}}),
        "004 GET resuming A's stream": ("GET", "/chat/send", {"params": {**query, "message": "B asks"},
                                                              "headers": {"Last-Event-ID": events["004"]}}),
    }
    before = snapshot(client, owned, {"session001", "session004", "dataset004"})
    problems = []
    for label, (method, url, kwargs) in attempts.items():
        response = sse_answer(client, method, url, **kwargs)
        if not refused(response, (400, 404) if "B's session" in label else (403, 404)) or owned.marker in response.text:
            problems.append(f"{label}: {response.status_code} {response.text[:200]!r}")
    assert not problems, "\n".join(problems)
    assert snapshot(client, owned, {"session001", "session004", "dataset004"}) == before


def test_socket_actions_on_the_owners_messages_are_refused(server: str, access_world: World):
    """From a socket of B's own chat, B cannot stop A's reply nor set the status of A's message."""
    client, owned, b = access_world.client, access_world.owned, access_world.intruder
    own_chat = ok(client.post("/api/v1/chat/chats", json={"title": "B's chat"}, headers=b.headers))["id"]
    own_chat_v1 = ok(client.post("/api/v1/chats", json={"title": "B's chat"}, headers=b.headers))["id"]
    base = server.replace("http://", "ws://")
    actions = {
        f"/api/v1/chat/chats/{own_chat}/ws": {"type": "stop", "message_id": owned.ids["reply000"]},
        f"/api/v1/chats/{own_chat_v1}/ws": {"type": "message_status", "message_id": owned.ids["message003"],
                                            "status": "READ"},
    }
    before = snapshot(client, owned, {"chat000", "chat003"})
    for path, frame in actions.items():
        ws = Socket(f"{base}{path}?token={b['access_token']}")
        try:
            ws.send(frame)
            error = ws.until("error")[-1]
        finally:
            ws.close()
        assert error["error"] and owned.marker not in json.dumps(error), (path, error)
    assert snapshot(client, owned, {"chat000", "chat003"}) == before
