"""Shared steps of the RAG API tests: upload a document and wait for it, read a /chat/send stream.

Every /chat/send event a test reads through these helpers must match the `x-events` schema of
its operation in /openapi.json (as tests/openapi_check.py checks the other responses).
"""
from __future__ import annotations

import json
from typing import Iterator

from httpx_sse import EventSource, connect_sse
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from tests.conftest import wait_for
from tests.openapi_check import ResponseChecker


def upload(api, account, filename: str, data: bytes, content_type: str = "application/octet-stream", **form):
    return api.post("/documents/upload", files={"file": (filename, data, content_type)}, data=form,
                    headers=account.headers)


def upload_ready(api, account, filename: str, data: bytes, **form) -> dict:
    """Upload and wait until the document is indexed; returns its final view."""
    response = upload(api, account, filename, data, **form)
    assert response.status_code == 200, response.text
    doc_id = response.json()["id"]

    def ready():
        doc = api.get(f"/documents/{doc_id}", headers=account.headers).json()
        return doc if doc["status"] in ("ready", "failed") else None

    doc = wait_for(ready, timeout=20)
    assert doc["status"] == "ready", doc
    return doc


def send(api, account, message: str, method: str = "POST", headers=None, **fields):
    """A /chat/send stream read by a real SSE client; returns (response, [(id, payload)])."""
    headers = {**account.headers, **(headers or {})}
    if method == "POST":
        kwargs = {"json": {"message": message, **fields}}
    else:
        params = {"message": message, "auth_token": account["access_token"], **fields}
        if isinstance(params.get("search_options"), dict):
            params["search_options"] = json.dumps(params["search_options"])
        kwargs = {"params": params}
        headers = {k: v for k, v in headers.items() if k != "Authorization"}
    with connect_sse(api, method, "/chat/send", headers=headers, **kwargs) as sse:
        if sse.response.status_code != 200:
            sse.response.read()
            return sse.response, []
        return sse.response, list(events(api, method, sse))


def of_type(received, kind: str) -> list[dict]:
    return [payload for _, payload in received if payload["type"] == kind]


VALIDATORS: dict[tuple[str, str], Draft202012Validator] = {}


def event_validator(api, method: str) -> Draft202012Validator:
    """The `x-events` schema of `<method> /chat/send` in the served /openapi.json."""
    key = (str(api.base_url), method.lower())
    if key not in VALIDATORS:
        spec = api.get("/openapi.json").json()
        schema = spec["paths"]["/chat/send"][method.lower()]["x-events"]["schema"]
        VALIDATORS[key] = ResponseChecker(spec).validator(schema)
    return VALIDATORS[key]


def checked(api, method: str, data: str) -> dict:
    """The JSON of one /chat/send event, after checking it against the operation's `x-events` schema."""
    payload = json.loads(data)
    error = best_match(event_validator(api, method).iter_errors(payload))
    assert error is None, (f"{method} /chat/send event does not match its x-events schema: {payload}: "
                           f"{'/'.join(map(str, error.absolute_path)) or 'event'}: {error.message}")
    return payload


def events(api, method: str, sse: EventSource) -> Iterator[tuple[str, dict]]:
    """(id, payload) of each event of a /chat/send stream, each checked against /openapi.json."""
    for event in sse.iter_sse():
        if event.data:  # httpx_sse turns a `: keep-alive` comment into an empty event; browsers don't
            yield event.id, checked(api, method, event.data)
