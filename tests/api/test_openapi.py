"""/openapi.json describes every served route from the pydantic models; /docs works offline."""
from __future__ import annotations

import re

import httpx

from tests.openapi_check import ResponseChecker
from web.openapi import SKIP_PREFIXES


def test_every_route_is_described(api, app):
    spec = api.get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0" and spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(SKIP_PREFIXES):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = spec["paths"].get(path, {}).get(method.lower())
            assert op is not None, f"{method} {path} is not described"
            assert "application/json" in op["responses"]["default"]["content"]
            answers = [s for s in op["responses"] if s != "default" and int(s) < 400]
            assert answers, f"{method} {path}: no success answer described (@responds)"


def test_the_checker_refuses_a_response_unlike_its_schema(api):
    spec = api.get("/openapi.json").json()
    checker = ResponseChecker(spec)
    request = httpx.Request("GET", "http://parley/openapi.json")
    assert checker.problems(httpx.Response(200, json={"openapi": "3.1.0"}, request=request)) == []
    assert checker.problems(httpx.Response(200, json=["not", "an", "object"], request=request))
    assert checker.problems(httpx.Response(201, json={}, request=request)) == [
        "GET /openapi.json → 201: status not described"]
    error = httpx.Request("GET", "http://parley/metrics")
    assert checker.problems(httpx.Response(401, json={"detail": "Missing token"}, request=error)) == []
    assert checker.problems(httpx.Response(401, json={"message": "no detail"}, request=error)) == [
        "GET /metrics → 401: body: Additional properties are not allowed ('message' was unexpected)",
        "GET /metrics → 401: body: 'detail' is a required property"]
    # The error body is closed: a stray field (a leaked internal, a renamed one) is refused.
    assert checker.problems(httpx.Response(401, json={"detail": "Missing token", "trace": "..."}, request=error)) == [
        "GET /metrics → 401: body: Additional properties are not allowed ('trace' was unexpected)"]
    invalid = {"detail": [{"loc": ["body", "title"], "msg": "too long", "type": "string_too_long", "input": "x"}]}
    assert checker.problems(httpx.Response(422, json=invalid, request=error)) == [
        f"GET /metrics → 422: detail: {invalid['detail']} is not valid under any of the given schemas"]


def test_request_models_come_from_the_validating_pydantic_models(api):
    spec = api.get("/openapi.json").json()
    create = spec["paths"]["/api/v1/chat/chats"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/chat.CreateChatRequest")
    chat_schema = spec["components"]["schemas"]["chat.CreateChatRequest"]
    assert chat_schema["properties"]["title"]["maxLength"] == 200 and create["security"] == [{"bearer": []}]
    listing = spec["paths"]["/api/v1/chat/chats"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "offset"}
    stream = spec["paths"]["/v1/chat/stream"]["post"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]
    # Bodies whose fields are all optional may be left out: described, not required. The two
    # service tests read theirs in a helper, and /openapi.json described no body for them.
    for path in ("/api/v1/chat/langchain/test", "/api/v1/chat/openai/test", "/api/v1/auth/refresh",
                 "/api/v1/auth/logout"):
        body = spec["paths"][path]["post"]["requestBody"]
        assert body["required"] is False and body["content"]["application/json"]["schema"]["$ref"], path


def test_docs_page_is_served_without_a_cdn(api):
    page = api.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text and "http" not in page.text
    assert api.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
