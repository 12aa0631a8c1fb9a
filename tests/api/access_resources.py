"""Owner A's resources on every surface, for the access-matrix tests.

One of each kind (000 chat and AI reply, 001 session, file and prompt, 002 conversation,
message and agent, 003 chat, message and reaction, 004 session, dataset, document and chunk,
the user's API key), each carrying a marker string that no answer to anyone else may contain,
plus a reader per kind so the owner can check nothing changed. `PATH_KINDS` says which kind
of A's resource fills each path parameter of each route.
"""
from __future__ import annotations

import random
import re
import string
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import httpx
import jwt as pyjwt
from flask import Flask
from flask_jwt_extended import create_access_token
from httpx_sse import connect_sse

from tests.conftest import Account, wait_for
from tests.pdfs import text_pdf
from web.api.conversations.envelope import PREFIXES as ENVELOPE_PREFIXES

PASSWORD = "correct horse battery"
NOT_A_RESOURCE = "not a resource"  # a path parameter that names no user's resource

# endpoint -> {path parameter: kind of A's resource that fills it}
PATH_KINDS: dict[str, dict[str, str]] = {
    "chat.get_chat": {"chat_id": "chat000"},
    "chat.ai_message": {"chat_id": "chat000"},
    "chat.send_message": {"chat_id": "chat000"},
    "chat.stop_reply": {"chat_id": "chat000", "message_id": "reply000"},
    "chat.typing": {"chat_id": "chat000"},
    "chat.list_participants": {"chat_id": "chat000"},
    "chat.add_participant": {"chat_id": "chat000"},
    "chat.remove_participant": {"chat_id": "chat000", "user_id": "user000"},
    "chat.chat_socket": {"chat_id": "chat000"},
    "sessions.upload": {"session_id": "session001"},
    "sessions.list_files": {"session_id": "session001"},
    "sessions.get_file": {"session_id": "session001", "file_id": "file001"},
    "sessions.delete_session": {"session_id": "session001"},
    "sessions.get_prompt": {"prompt_id": "prompt001"},
    "sessions.update_prompt": {"prompt_id": "prompt001"},
    "sessions.delete_prompt": {"prompt_id": "prompt001"},
    "conversations.get_conversation": {"conversation_id": "conversation002"},
    "conversations.update_conversation": {"conversation_id": "conversation002"},
    "conversations.delete_conversation": {"conversation_id": "conversation002"},
    "conversations.list_messages": {"conversation_id": "conversation002"},
    "conversations.add_message": {"conversation_id": "conversation002"},
    "conversations.ai_response": {"conversation_id": "conversation002"},
    "conversations.get_agent": {"agent_id": "agent002"},
    "conversations.update_agent": {"agent_id": "agent002"},
    "conversations.delete_agent": {"agent_id": "agent002"},
    "chats_v1.get_chat": {"chat_id": "chat003"},
    "chats_v1.update_chat_status": {"chat_id": "chat003"},
    "chats_v1.send_message": {"chat_id": "chat003"},
    "chats_v1.list_messages": {"chat_id": "chat003"},
    "chats_v1.chats_socket": {"chat_id": "chat003"},
    "chats_v1.update_message_status": {"message_id": "message003"},
    "chats_v1.add_reaction": {"message_id": "message003"},
    "chats_v1.remove_reaction": {"message_id": "message003", "reaction": "reaction003"},
    "rag.get_session": {"session_id": "session004"},
    "rag.delete_session": {"session_id": "session004"},
    "rag.get_dataset": {"dataset_id": "dataset004"},
    "rag.get_document": {"document_id": "document004"},
    "rag.delete_document": {"document_id": "document004"},
    "rag.get_chunk": {"document_id": "document004", "chunk_index": "chunk004"},
    "rag.session_documents": {"session_id": "session004"},
    "openapi.docs_asset": {"name": NOT_A_RESOURCE},
    "admin_users.update_user": {"user_id": "user000"},
}
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def register(client: httpx.Client, prefix: str) -> Account:
    """A new user, signed in."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    user = client.post("/api/v1/auth/register", json={"email": f"{name}@example.com", "username": name,
                                                      "password": PASSWORD})
    assert user.status_code == 201, user.text
    return Account(**user.json(), **sign_in(client, name), password=PASSWORD)


def sign_in(client: httpx.Client, username: str) -> dict:
    tokens = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


@dataclass
class Owned:
    owner: Account
    marker: str  # in every title and content of A's: no answer to anyone else may contain it
    ids: dict[str, Any]  # kind -> id as its surface shows it
    last_event_ids: dict[str, str]  # an SSE event id of A's 001 and 004 replies (to try resuming them)

    def path(self, rule: str, endpoint: str) -> str:
        """The rule's path with its parameters filled with A's resources."""
        kinds = PATH_KINDS[endpoint]
        return PARAM.sub(lambda m: str(self.ids[kinds[m.group(1)]]), rule)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def create_everything(client: httpx.Client, owner: Account, fake_upstream) -> Owned:
    """One of every kind of resource, owned by `owner`."""
    # Letters only: PostgreSQL's text search reads a hex word such as 775e3d193c50 as the
    # number 775e3 and a word, so 002's search would not find it inside the hyphenated marker.
    marker = f"owner-secret-{''.join(random.choices(string.ascii_lowercase, k=12))}"
    fake_upstream.configure(reply=f"The answer is {marker} [1].")
    h = owner.headers
    ids: dict[str, Any] = {}
    events: dict[str, str] = {}

    ids["chat000"] = ok(client.post("/api/v1/chat/chats", json={"title": f"chat {marker}"}, headers=h))["id"]
    ids["user000"] = owner["id"]  # a participant of A's chat (its owner)
    ok(client.post(f"/api/v1/chat/chats/{ids['chat000']}/messages", json={"content": f"ask {marker}"}, headers=h))

    def delivered_reply():
        found = ok(client.get(f"/api/v1/chat/chats/{ids['chat000']}", headers=h))["messages"]
        return next((m["id"] for m in found if m["message_type"] == "AI" and m["status"] == "DELIVERED"), None)

    ids["reply000"] = wait_for(delivered_reply, timeout=20, what="A's 000 reply")

    with connect_sse(client, "POST", "/v1/chat/stream", headers=h,
                     json={"model": "gpt-4", "messages": [{"role": "user", "content": f"story {marker}"}]}) as sse:
        received = list(sse.iter_sse())
        ids["session001"] = int(sse.response.headers["X-Session-Id"])
    events["001"] = received[0].id
    upload = client.post(f"/api/chat/sessions/{ids['session001']}/upload", headers=h,
                         files={"file": ("a.pdf", text_pdf([f"page {marker}"]), "application/pdf")})
    ids["file001"] = ok(upload)["file"]["id"]
    wait_for(lambda: ok(client.get(f"/api/chat/sessions/{ids['session001']}/files/{ids['file001']}", headers=h)
                        )["file"]["status"] == "READY", timeout=20, what="A's PDF parsed")
    ids["prompt001"] = ok(client.post("/api/chat/prompts", headers=h, json={
        "title": f"prompt {marker}", "content": f"Summarize {marker}: {{text}}"}))["id"]

    ids["agent002"] = ok(client.post("/chat/agents", json={"name": f"agent {marker}", "system_prompt": marker},
                                     headers=h), 201)["data"]["agent_id"]
    ids["conversation002"] = ok(client.post("/chat/conversations", headers=h, json={
        "title": f"conversation {marker}", "agent_id": ids["agent002"]}), 201)["data"]["conversation_id"]
    ok(client.post(f"/chat/conversations/{ids['conversation002']}/messages", json={"content": f"note {marker}"},
                   headers=h), 201)

    ids["chat003"] = ok(client.post("/api/v1/chats", json={"title": f"v1 {marker}", "chat_type": "GROUP"},
                                    headers=h))["id"]
    ids["message003"] = ok(client.post(f"/api/v1/chats/{ids['chat003']}/messages", json={"content": f"hi {marker}"},
                                       headers=h))["id"]
    ids["reaction003"] = "like"
    ok(client.post(f"/api/v1/messages/{ids['message003']}/reactions", json={"reaction": "like"}, headers=h))

    document = client.post("/documents/upload", headers=h,
                           files={"file": ("vault.txt", f"The vault code is {marker}.".encode(), "text/plain")})
    ids["document004"] = ok(document)["id"]
    wait_for(lambda: ok(client.get(f"/documents/{ids['document004']}", headers=h))["status"] == "ready",
             timeout=20, what="A's document indexed")
    ids["chunk004"] = 0
    ids["dataset004"] = ok(client.post("/datasets", json={"name": f"set {marker}", "document_ids": [ids["document004"]]},
                                       headers=h), 201)["id"]
    with connect_sse(client, "POST", "/chat/send", headers=h,
                     json={"message": f"What is the vault code {marker}?", "search_options": {"score_threshold": 0}}
                     ) as sse:
        received = list(sse.iter_sse())
        ids["session004"] = sse.response.headers["X-Session-Id"]
    events["004"] = received[1].id

    ok(client.put("/api/v1/users/me/api-keys/openai", headers=h,
                  json={"api_key": f"sk-{uuid.uuid4().hex}", "base_url": fake_upstream.base_url}))
    return Owned(owner, marker, ids, events)


def _json(client: httpx.Client, owned: Owned, url: str) -> Any:
    """The owner's view of `url` (the status and text instead, when it is no longer 200)."""
    response = client.get(url, headers=owned.owner.headers)
    return response.json() if response.status_code == 200 else f"{response.status_code}: {response.text}"


def _session001(client: httpx.Client, owned: Owned) -> Any:
    history = _json(client, owned, "/v1/chat/history?page_size=100")
    if isinstance(history, str):
        return history
    return next((s for s in history["sessions"] if s["id"] == owned.ids["session001"]), "no longer in the history")


# kind -> what the owner reads to see that kind of resource as it is
READERS: dict[str, Callable[[httpx.Client, Owned], Any]] = {
    "chat000": lambda c, o: (_json(c, o, f"/api/v1/chat/chats/{o.ids['chat000']}"),
                             _json(c, o, f"/api/v1/chat/chats/{o.ids['chat000']}/participants")),
    "session001": _session001,
    "file001": lambda c, o: _json(c, o, f"/api/chat/sessions/{o.ids['session001']}/files/{o.ids['file001']}"),
    "prompt001": lambda c, o: _json(c, o, f"/api/chat/prompts/{o.ids['prompt001']}"),
    "conversation002": lambda c, o: (_json(c, o, f"/chat/conversations/{o.ids['conversation002']}"),
                                     _json(c, o, f"/chat/conversations/{o.ids['conversation002']}/messages")),
    "agent002": lambda c, o: _json(c, o, f"/chat/agents/{o.ids['agent002']}"),
    "chat003": lambda c, o: (_json(c, o, f"/api/v1/chats/{o.ids['chat003']}"),
                             _json(c, o, f"/api/v1/chats/{o.ids['chat003']}/messages")),
    "session004": lambda c, o: _json(c, o, f"/chat/sessions/{o.ids['session004']}"),
    "dataset004": lambda c, o: _json(c, o, f"/datasets/{o.ids['dataset004']}"),
    "document004": lambda c, o: (_json(c, o, f"/documents/{o.ids['document004']}"),
                                 _json(c, o, f"/documents/{o.ids['document004']}/chunks/0")),
    "api_key": lambda c, o: _json(c, o, "/api/v1/users/me/api-keys/openai"),
}
# kinds read through another kind's reader
READ_AS = {"reply000": "chat000", "user000": "chat000", "message003": "chat003", "reaction003": "chat003",
           "chunk004": "document004"}


def snapshot(client: httpx.Client, owned: Owned, kinds: set[str] | None = None) -> dict[str, Any]:
    """What the owner sees of the resources of `kinds` (default: all)."""
    wanted = {READ_AS.get(k, k) for k in kinds} if kinds is not None else set(READERS)
    return {kind: READERS[kind](client, owned) for kind in sorted(wanted)}


@dataclass
class World:
    client: httpx.Client
    owned: Owned
    intruder: Account  # a user who is no participant or owner of anything of A's


def error_reason(response: httpx.Response) -> str | None:
    """The reason an error answer gives, in the error body of the URL's surface; None if it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if response.request.url.path.startswith(ENVELOPE_PREFIXES):
        enveloped = body.get("success") is False and "data" in body and body["data"] is None
        return (body.get("message") or None) if enveloped else None
    return str(body["detail"]) if body.get("detail") else None


# the kind of bad token -> a word the refusal's reason must contain
REASONS = {"no token": "Not authenticated", "malformed": "credentials", "forged": "credentials",
           "expired": "expired", "revoked": "revoked", "refresh token": "access token"}


def bad_tokens(app: Flask, world: World) -> dict[str, str | None]:
    """One token of each kind in REASONS, all of the owner's."""
    owner, client = world.owned.owner, world.client
    with app.app_context():
        expired = create_access_token(identity=str(owner["user_id"]), expires_delta=timedelta(seconds=-60))
    forged = pyjwt.encode({"sub": str(owner["user_id"]), "type": "access", "jti": uuid.uuid4().hex,
                           "exp": int(time.time()) + 600}, "not the app's secret, but long enough", "HS256")
    spare = sign_in(client, owner["username"])["access_token"]
    ok(client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {spare}"}))
    return {"no token": None, "malformed": "not-a-token", "forged": forged, "expired": expired, "revoked": spare,
            "refresh token": owner["refresh_token"]}
