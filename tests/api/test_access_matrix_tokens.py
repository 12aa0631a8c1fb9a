"""The 401 matrix: every operation `/openapi.json` secures with a bearer token refuses a request
with no token, a malformed, forged, expired or revoked one, or a refresh token, in the header
or in `?token=`, with 401 and a reason in its surface's error body. Operations that read no
token from the URL (all but the event streams) refuse even a valid one there, saying so.

WebSocket routes are in test_access_matrix_streams.py.
"""
from __future__ import annotations

import httpx
from flask import Flask

from tests.api.access_resources import PATH_KINDS, REASONS, World, error_reason, ok
from web.auth.tokens import QUERY_TOKEN_NAMES, URL_TOKEN_IGNORED, reads_query_token


def secured_operations(app: Flask, world: World) -> list[tuple[str, str, str]]:
    """(method, URL, endpoint) of each bearer-secured HTTP operation of the spec, ids filled with A's."""
    spec = ok(world.client.get("/openapi.json"))
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if {"bearer": []} not in op.get("security", []):
                continue
            endpoint = op["operationId"].rsplit(".", 1)[0]
            rule = rules[endpoint]
            if rule.websocket:
                continue
            url = world.owned.path(rule.rule, endpoint) if endpoint in PATH_KINDS else path
            found.append((method.upper(), url, endpoint))
    return found


def refusal_problem(response: httpx.Response, says: str) -> str | None:
    """What is wrong with `response` as a 401 whose reason `says` (None when nothing is)."""
    reason = error_reason(response)
    if response.status_code != 401:
        return f"answered {response.status_code}: {response.text[:200]}"
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"answered {response.headers.get('content-type')}, not JSON"
    if reason is None or says not in reason:
        return f"reason {reason!r} does not say {says!r}: {response.text[:200]}"
    if response.headers.get("WWW-Authenticate") != "Bearer":
        return "no WWW-Authenticate: Bearer"
    return None


def test_every_secured_operation_refuses_bad_tokens(app: Flask, access_world: World, bad_tokens):
    client = access_world.client
    operations = secured_operations(app, access_world)
    assert ("GET", "/metrics", "metrics.metrics") in operations
    assert len(operations) > 60  # nearly all of the spec's operations
    problems = []
    for method, url, endpoint in operations:
        reads_url = reads_query_token(app.view_functions[endpoint])
        in_url = REASONS if reads_url else dict.fromkeys(REASONS, URL_TOKEN_IGNORED)
        for kind, token in bad_tokens.items():
            placements = [("header", {"Authorization": f"Bearer {token}"}, {}, REASONS),
                          ("?token=", {}, {"token": token}, in_url)]
            for placement, headers, params, reasons in placements if token else [("", {}, {}, REASONS)]:
                response = client.request(method, url, headers=headers, params=params)
                problem = refusal_problem(response, reasons[kind])
                if problem:
                    problems.append(f"{method} {url} ({endpoint}), {kind} {placement}: {problem}")
    assert not problems, "\n".join(problems)


def test_operations_that_read_no_url_token_refuse_a_valid_one_there(app: Flask, access_world: World):
    client, token = access_world.client, access_world.owned.owner["access_token"]
    problems = []
    for method, url, endpoint in secured_operations(app, access_world):
        if reads_query_token(app.view_functions[endpoint]):
            continue
        for name in QUERY_TOKEN_NAMES:
            problem = refusal_problem(client.request(method, url, params={name: token}), URL_TOKEN_IGNORED)
            if problem:
                problems.append(f"{method} {url} ({endpoint}), ?{name}=: {problem}")
    assert not problems, "\n".join(problems)


def test_operations_the_spec_leaves_open_are_open(access_world: World):
    """The other way round: without security in the spec, no 401 without a token (unless it is described:
    the sign-in routes check credentials of their own)."""
    spec = ok(access_world.client.get("/openapi.json"))
    problems = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if "security" in op or "{" in path or "401" in op["responses"]:
                continue
            response = access_world.client.request(method.upper(), path)
            if response.status_code == 401:
                problems.append(f"{method.upper()} {path}: 401 without a token, yet no security in the spec")
    assert not problems, "\n".join(problems)
