"""Shared steps of the RAG API tests: upload a document and wait for it, read a /chat/send stream."""
from __future__ import annotations

import json

from httpx_sse import connect_sse

from tests.conftest import wait_for


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
        received = [(e.id, json.loads(e.data)) for e in sse.iter_sse()]
        return sse.response, received


def of_type(received, kind: str) -> list[dict]:
    return [payload for _, payload in received if payload["type"] == kind]
