"""Bad input on every surface (000-004 and auth) gets a 4xx with a reason, never a 500.

Oversized, unreadable, too deeply nested or non-object bodies; NUL characters, lone
surrogates, NaN and huge numbers; unknown fields; invalid UTF-8 and out-of-range ids in URLs.
Run on SQLite and on PostgreSQL (which refuses NUL, lone surrogates and ids past 32 bits).
"""
from __future__ import annotations

import json
import typing
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from models.base import MAX_KEY
from web.api.parsing import InputModel, QueryModel, RequestModel
from web.openapi import request_models
from web.realtime import presence
from web.request_checks import UPLOAD_BODY_BYTES
from workers import runtime

ONE_MB = 1024 * 1024
DEEP = "[" * 100_000 + "]" * 100_000
DEEP_FRAME = "[" * 20_000 + "]" * 20_000  # past json's recursion limit, within a socket frame's 64 KiB


@dataclass(frozen=True)
class Surface:
    name: str
    body_url: str  # POST with a JSON object
    body: Callable[[], dict[str, Any]]  # one this URL accepts
    text_field: str  # a string field of that body
    invalid: int  # the status of an invalid body on this URL
    list_url: str | None = None  # GET with a query model, and its integer parameter
    int_param: str | None = None
    query_invalid: int = 422
    id_url: str | None = None  # GET with an id in the path
    envelope: bool = False  # 002's {success, message, data}
    accepted: int = 200  # what `body()` gets (auth: 401, for an unknown user)


SURFACES = [
    Surface("000", "/api/v1/chat/chats", lambda: {"title": "t"}, "title", 422,
            "/api/v1/chat/chats", "offset", 422, "/api/v1/chat/chats/{}"),
    Surface("001", "/api/chat/prompts", lambda: {"title": "t", "content": "c"}, "title", 422,
            "/api/chat/prompts", "page", 400, "/api/chat/prompts/{}"),
    Surface("002", "/chat/conversations", lambda: {"title": "t"}, "title", 422,
            "/chat/conversations", "offset", 422, "/chat/conversations/{}", envelope=True, accepted=201),
    Surface("003", "/api/v1/chats", lambda: {"title": "t"}, "title", 400,
            "/api/v1/chats", "skip", 400, "/api/v1/chats/{}"),
    Surface("004", "/datasets", lambda: {"name": f"d-{uuid.uuid4().hex}"}, "name", 422,
            "/chat/sessions", "offset", 400, "/documents/{}", accepted=201),
    Surface("004-send", "/chat/send", lambda: {"message": "hi", "session_id": str(uuid.uuid4())}, "message", 400,
            accepted=404),  # an unknown session: refused before any reply starts
    Surface("auth", "/api/v1/auth/login", lambda: {"username": "nobody", "password": "secret"}, "username", 422,
            accepted=401),
]
WITH_QUERY = [s for s in SURFACES if s.list_url]
WITH_IDS = [s for s in SURFACES if s.id_url]


def error_text(surface: Surface, response) -> str:
    """The error in the surface's documented body, as text to look for words in."""
    body = response.json()
    if surface.envelope:
        assert body["success"] is False and body["data"] is None and body["message"]
        return json.dumps([body["message"], body.get("errors")])
    assert body["detail"]
    return json.dumps(body["detail"])


def post_raw(api, surface: Surface, account, content: bytes | Any, content_type: str | None = "application/json"):
    headers = {**account.headers, **({"Content-Type": content_type} if content_type else {})}
    return api.post(surface.body_url, content=content, headers=headers)


BODIES = {  # name: (raw body, Content-Type, words the error must hold)
    "malformed": (b'{"title": ', "application/json", "Invalid JSON"),
    "not an object": (b"[1, 2]", "application/json", "must be a JSON object"),
    "empty": (b"", "application/json", "must be a JSON object"),
    "not JSON": (b"title=t", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
    "no Content-Type": (b'{"title": "t"}', None, "Content-Type must be application/json"),
    "invalid UTF-8": (b'{"title": "\xff\xfe"}', "application/json", "not valid UTF-8"),
    "100k nested arrays": (DEEP.encode(), "application/json", "nested more than 32 levels"),
    "100k nested in a field": (('{"title": ' + DEEP + "}").encode(), "application/json", "nested more than 32"),
    "33 nested objects": (('{"a": ' * 33 + "1" + "}" * 33).encode(), "application/json", "nested more than 32"),
    "NaN": (b'{"title": NaN}', "application/json", "NaN is not a JSON value"),
    "-Infinity": (b'{"title": -Infinity}', "application/json", "-Infinity is not a JSON value"),
    "1e999": (b'{"title": 1e999}', "application/json", "out of range"),
    "a 5000-digit integer": (b'{"title": 1' + b"0" * 5000 + b"}", "application/json", "at most 32 digits"),
}


@pytest.mark.parametrize("case", BODIES)
@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_unreadable_bodies_are_refused_with_a_reason(api, alice, surface, case):
    content, content_type, words = BODIES[case]
    response = post_raw(api, surface, alice, content, content_type)
    assert response.status_code == surface.invalid, response.text
    assert words in error_text(surface, response)


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_unknown_fields_are_refused_by_name(api, alice, surface):
    assert api.post(surface.body_url, json=surface.body(), headers=alice.headers).status_code == surface.accepted
    response = api.post(surface.body_url, json={**surface.body(), "colour": "blue"}, headers=alice.headers)
    assert response.status_code == surface.invalid, response.text
    assert "colour" in error_text(surface, response) and "Extra inputs are not permitted" in response.text


TEXTS = {  # name: (a JSON string literal, words the error must hold)
    "NUL": ('"a\\u0000b"', "must not contain NUL characters"),
    "lone surrogate": ('"a\\ud800b"', "lone surrogate"),
}


@pytest.mark.parametrize("case", TEXTS)
@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_text_the_database_cannot_store_is_refused(api, alice, surface, case):
    literal, words = TEXTS[case]
    body = json.dumps(surface.body())[:-1] + f', "{surface.text_field}": {literal}}}'
    response = post_raw(api, surface, alice, body.encode())
    assert response.status_code == surface.invalid, response.text
    assert words in error_text(surface, response) and surface.text_field in error_text(surface, response)


NESTED = [  # text deep inside free-form fields (stored as JSON, which PostgreSQL's JSONB refuses too)
    ("000", "/api/v1/chat/chats", {"title": "t", "tags": ["ok", "a\x00b"]}, 422),
    ("001", "/api/chat/prompts", {"title": "t", "content": "c", "metadata": {"tags": [{"k": "\ud800"}]}}, 422),
    ("002", "/chat/conversations/1/messages", {"content": "c", "attachments": [{"file_name": "a\x00"}]}, 422),
    ("003", "/api/v1/chats", {"title": "t", "chat_metadata": {"a\x00": 1}}, 400),
    ("004", "/chat/send", {"message": "hi", "search_options": {"search_type": "\x00"}}, 400),
]


@pytest.mark.parametrize("name, url, body, status", NESTED, ids=[n[0] for n in NESTED])
def test_text_inside_objects_and_lists_is_checked_too(api, alice, name, url, body, status):
    response = api.post(url, content=json.dumps(body).encode(), headers={**alice.headers,
                                                                          "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert "NUL" in response.text or "surrogate" in response.text


BIG = "9" * 23  # past 64 bits

NUMBERS = [  # huge integers where the body has an integer, a negative id
    ("000", "/api/v1/chat/chats", f'{{"title": "t", "max_tokens": {BIG}}}', 422, "max_tokens"),
    ("001", "/v1/chat/switch-model", f'{{"session_id": {BIG}, "model": "gpt-4"}}', 422, "session_id"),
    ("001", "/api/chat/prompts/preview", '{"prompt_id": -1, "variables": {}}', 422, "prompt_id"),
    ("001", "/v1/chat/switch-model", f'{{"session_id": -{BIG}, "model": "gpt-4"}}', 422, "session_id"),
    ("001", "/v1/chat/stream", f'{{"session_id": -{BIG}, "model": "gpt-4", "messages": '
                               '[{"role": "user", "content": "hi"}]}', 422, "session_id"),
    ("002", "/chat/conversations", f'{{"agent_id": {BIG}}}', 422, "agent_id"),
    ("003", "/api/v1/chats/1/messages", f'{{"content": "c", "parent_message_id": {BIG}}}', 400, "parent_message_id"),
    ("004", "/chat/send", f'{{"message": "hi", "search_options": {{"k": {BIG}}}}}', 400, "search_options"),
]


@pytest.mark.parametrize("name, url, body, status, words", NUMBERS, ids=[f"{n[0]}-{n[4]}" for n in NUMBERS])
def test_numbers_out_of_range_are_refused(api, alice, name, url, body, status, words):
    response = api.post(url, content=body.encode(), headers={**alice.headers, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert words in response.text


WRONG_TYPES = [  # JSON's own types count: a boolean is not an id, a string is not a number
    ("000", "/api/v1/chat/chats", {"title": "t", "max_tokens": "100"}, 422, "max_tokens"),
    ("001", "/v1/chat/switch-model", {"session_id": True, "model": "gpt-4"}, 422, "session_id"),
    ("002", "/chat/conversations", {"title": "t", "agent_id": True}, 422, "agent_id"),
    ("003", "/api/v1/chats", {"title": "t", "rag_enabled": "yes"}, 400, "rag_enabled"),
    ("004", "/chat/send", {"message": "hi", "search_options": {"k": True}}, 400, "search_options"),
    ("004", "/chat/send", {"message": "hi", "search_options": {"rerank": "yes"}}, 400, "rerank"),
]


@pytest.mark.parametrize("name, url, body, status, words", WRONG_TYPES, ids=[f"{n[0]}-{n[4]}" for n in WRONG_TYPES])
def test_values_of_the_wrong_json_type_are_refused(api, alice, name, url, body, status, words):
    response = api.post(url, json=body, headers=alice.headers)
    assert response.status_code == status, response.text
    assert words in response.text


def test_names_of_only_spaces_are_refused(api, alice):
    dataset = api.post("/datasets", json={"name": "   "}, headers=alice.headers)
    assert dataset.status_code == 422 and "name" in dataset.text, dataset.text
    conversation = api.post("/chat/conversations", json={}, headers=alice.headers).json()["data"]["conversation_id"]
    attached = api.post(f"/chat/conversations/{conversation}/messages", headers=alice.headers,
                        json={"content": "see file", "attachments": [{"file_name": "  "}]})
    assert attached.status_code == 422 and "file_name" in attached.text, attached.text


def test_fields_the_documents_define_are_accepted_even_when_the_server_sets_them(api, alice):
    chat = api.post("/api/v1/chats", json={"title": "t", "user_id": "999", "session_id": "888"}, headers=alice.headers)
    assert chat.status_code == 200, chat.text
    assert chat.json()["user_id"] == str(alice["user_id"]) and chat.json()["session_id"] == str(chat.json()["id"])
    message = api.post(f"/api/v1/chats/{chat.json()['id']}/messages", json={"content": "c", "reactions": {"x": []}},
                       headers=alice.headers)
    assert message.status_code == 200 and message.json()["reactions"] == {}


# Oversized bodies

@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_one_megabyte_are_413(api, alice, surface, chunked):
    body = json.dumps({**surface.body(), surface.text_field: "x" * ONE_MB}).encode()
    content = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    response = post_raw(api, surface, alice, content)
    assert response.status_code == 413, response.text
    assert "at most 1048576 bytes" in error_text(surface, response)


def test_just_under_the_cap_is_read(api, alice):
    body = json.dumps({"title": "t", "description": "x" * (ONE_MB - 100)})
    response = api.post("/api/v1/chat/chats", content=body,
                        headers={**alice.headers, "Content-Type": "application/json"})
    assert response.status_code == 422 and "description" in response.text  # read: too long for the field


def test_upload_urls_take_files_up_to_their_limit(api, alice):
    session_id = api.post("/api/v1/chats", json={"title": "files"}, headers=alice.headers).json()["id"]
    two_mb = b"not a pdf " * (2 * ONE_MB // 10)
    not_pdf = api.post(f"/api/chat/sessions/{session_id}/upload", files={"file": ("a.pdf", two_mb)},
                       headers=alice.headers)
    assert not_pdf.status_code == 400 and "PDF" in not_pdf.json()["detail"]
    too_big = b"x" * (UPLOAD_BODY_BYTES + 1)
    for url in (f"/api/chat/sessions/{session_id}/upload", "/documents/upload"):
        response = api.post(url, files={"file": ("a.txt", too_big)}, headers=alice.headers)
        assert response.status_code == 413, response.text
        assert f"at most {UPLOAD_BODY_BYTES} bytes" in response.json()["detail"]


def test_a_form_field_over_its_limit_is_413_saying_so(api, alice):
    """A 600 kB form field (the file sent as a plain field, an oversized dataset_id) in an upload
    well under the upload cap got werkzeug's generic "The data value transmitted exceeds the capacity limit"."""
    session_id = api.post("/api/v1/chats", json={"title": "files"}, headers=alice.headers).json()["id"]
    for url in (f"/api/chat/sessions/{session_id}/upload", "/documents/upload"):
        response = api.post(url, files={"file": ("a.txt", b"hello")}, data={"dataset_id": "x" * 600_000},
                            headers=alice.headers)
        assert response.status_code == 413, response.text
        assert response.json()["detail"].startswith("Form field too large: fields other than the file take "
                                                    "at most 500000 bytes each"), response.text


def test_a_file_name_with_a_nul_is_refused(api, alice):
    session_id = api.post("/api/v1/chats", json={"title": "files"}, headers=alice.headers).json()["id"]
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n%PDF-1.4 x\r\n--{boundary}--\r\n").encode()
    headers = {**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    for url in (f"/api/chat/sessions/{session_id}/upload", "/documents/upload"):
        response = api.post(url, content=body, headers=headers)
        assert response.status_code == 400 and "NUL" in response.json()["detail"], response.text


# Query strings and paths

@pytest.mark.parametrize("surface", WITH_QUERY, ids=lambda s: s.name)
def test_query_strings(api, alice, surface):
    get = lambda query: api.get(f"{surface.list_url}?{query}", headers=alice.headers)  # noqa: E731
    assert get("_=1700000000&utm_source=x&token=not-used").status_code == 200  # unknown parameters: ignored
    for value in ("99999999999999999999999", str(MAX_KEY + 1), "-1", "1e3", "NaN"):
        response = get(f"{surface.int_param}={value}")
        assert response.status_code == surface.query_invalid, response.text
        assert surface.int_param in error_text(surface, response)
    for raw in ("q=%FF", "q=%ED%A0%80", "%C3=1"):  # invalid UTF-8; a UTF-8-encoded surrogate
        response = get(raw)
        assert response.status_code == 400 and "not valid UTF-8" in error_text(surface, response)


def test_nul_in_query_strings(api, alice):
    for url in ("/api/chat/prompts?search=a%00b", "/api/chat/prompts?scenario=%00", "/v1/chat/history?model=%00",
                f"/chat/send?message=a%00b&auth_token={alice['access_token']}"):
        response = api.get(url, headers=alice.headers)
        assert response.status_code == 400 and "NUL" in response.text, response.text
    found = api.get("/chat/search?query=a%00b", headers=alice.headers)  # 002: a NUL separates words there
    assert found.status_code == 200 and found.json()["data"]["query"] == "a b"


@pytest.mark.parametrize("surface", WITH_IDS, ids=lambda s: s.name)
def test_path_segments(api, alice, surface):
    for segment in ("99999999999999999999999", "9" * 5000, str(MAX_KEY + 1), "9999999999", "-1", "0",
                    "x" * 20_000, "%E2%82%AC" * 100):
        response = api.get(surface.id_url.format(segment), headers=alice.headers)
        assert response.status_code == 404, (segment[:30], response.text)
        error_text(surface, response)
    for segment, words in (("%FF", "not valid UTF-8"), ("a%C3", "not valid UTF-8"), ("%ED%A0%80", "not valid UTF-8"),
                           ("a%00b", "NUL")):
        response = api.get(surface.id_url.format(segment), headers=alice.headers)
        assert response.status_code == 400 and words in error_text(surface, response), response.text


def test_ids_past_the_keys_are_404_whatever_the_method(api, alice):
    for method, url in (("delete", "/chat/conversations/{}"), ("put", "/api/chat/prompts/{}"),
                        ("patch", "/api/v1/messages/{}/status"), ("delete", "/v1/chat/sessions/{}"),
                        ("get", "/api/chat/sessions/1/files/{}"), ("get", "/documents/x/chunks/{}")):
        for value in (str(MAX_KEY + 1), "9999999999", "99999999999999999999999"):
            response = api.request(method.upper(), url.format(value), headers=alice.headers)
            assert response.status_code == 404, (method, url, value, response.text)


def test_reaction_path_segments(api, alice):
    chat = api.post("/api/v1/chats", json={"title": "t"}, headers=alice.headers).json()
    message = api.post(f"/api/v1/chats/{chat['id']}/messages", json={"content": "c"}, headers=alice.headers).json()
    url = f"/api/v1/messages/{message['id']}/reactions/"
    assert api.delete(url + "%00", headers=alice.headers).status_code == 400
    assert api.delete(url + "%F0%9F", headers=alice.headers).status_code == 400
    assert api.delete(url + "x" * 20_000, headers=alice.headers).status_code == 404


# The 500 handler, the WebSocket, and the models behind it all

def test_a_500_names_the_request_id_the_logs_and_header_carry(api, alice, caplog):
    """A web process's socket counts (web.realtime.presence) are a hash; a string under their prefix
    makes Redis refuse to read it (WRONGTYPE) when the stats add them up: an error no handler expects."""
    redis, key = runtime.current().redis, f"{presence.PREFIX}bad-input-500"
    redis.set(key, "not a hash")
    try:
        for sent in ("bad-input-500", None):
            headers = {**alice.headers, **({"X-Request-ID": sent} if sent else {})}
            response = api.get("/api/v1/chat/stats", headers=headers)
            assert response.status_code == 500 and "WRONGTYPE" not in response.text
            request_id = response.headers["X-Request-ID"]
            assert request_id == (sent or request_id)
            assert response.json()["detail"] == f"Internal server error (request id {request_id})"
            assert f"unhandled error (request {request_id})" in caplog.text and "WRONGTYPE" in caplog.text
    finally:
        redis.delete(key)


def test_bad_websocket_frames_get_an_error_and_the_socket_stays(alice, make_chat, connect):
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    assert ws.next()["type"] == "welcome"
    for frame in (DEEP_FRAME, '{"type": {"a": 1}}', '{"type": ["ping"]}', '"ping"',
                  json.dumps({"type": "stop", "message_id": "a\x00b"})):
        ws.ws.send(frame)
        answer = ws.next()
        assert answer["type"] == "error" and answer["error_code"] == "invalid_message"
    ws.send({"type": "ping", "timestamp": "t"})
    assert ws.until("pong")[-1]["timestamp"] == "t"


def test_request_models_refuse_unknown_fields_and_bound_their_integers(app):
    for endpoint, view in app.view_functions.items():
        models = request_models(view)
        body, query = models.get("body", RequestModel), models.get("query", QueryModel)
        assert issubclass(body, RequestModel) and body.model_config["extra"] == "forbid", endpoint
        assert issubclass(query, InputModel) and query.model_config.get("extra") != "forbid", endpoint
    pending, seen = [InputModel], []
    while pending:
        model = pending.pop()
        seen.append(model)
        pending.extend(model.__subclasses__())
        for name, field in model.model_fields.items():
            if int in (field.annotation, *typing.get_args(field.annotation)):
                bounds = [m.le for m in field.metadata if getattr(m, "le", None) is not None]
                assert bounds and bounds[0] <= MAX_KEY, f"{model.__name__}.{name} has no upper bound"
    assert len(seen) > 30


def test_metadata_objects_take_at_most_16_kb(api, alice, make_chat):
    """A client's metadata comes back with every item of a list (up to 1,000 a page): each surface
    bounds it, 422 (400 on 003) naming the field."""
    from tests.api.test_chats_v1 import create_chat

    big, fits = {"notes": "x" * 16384}, {"notes": "x" * 16000}
    chat = make_chat(alice)
    v1_chat = create_chat(api, alice)
    for url, field, status in ((f"/api/v1/chat/chats/{chat['id']}/messages", "message_metadata", 422),
                               (f"/api/v1/chats/{v1_chat['id']}/messages", "message_metadata", 400),
                               ("/api/chat/prompts", "metadata", 422)):
        body = {"content": "hi", "title": "t"} if "prompts" in url else {"content": "hi"}
        refused = api.post(url, json={**body, field: big}, headers=alice.headers)
        assert refused.status_code == status, url
        error = refused.json()["detail"][0]
        assert error["loc"] == ["body", field] and "at most 16384 bytes" in error["msg"], url
        assert api.post(url, json={**body, field: fits}, headers=alice.headers).status_code == 200, url
