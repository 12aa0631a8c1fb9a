"""POST/GET /chat/send (004): retrieval, status events, tokens, citations, done; resume; errors."""
from __future__ import annotations

import json
import logging
import re
import time

import pytest
import sqlalchemy.event
from httpx_sse import connect_sse
from sqlalchemy import select

from models import Chat
from tests.admin.accounts import promote, set_active
from tests.api.rag_helpers import checked, events, of_type, send, upload_ready
from tests.conftest import enqueue_refused, sent_while_deleting
from tests.pdfs import text_pdf
from workers import events as stream_events
from workers import leases, runtime

FRANCE = "The capital of France is Paris. It lies on the Seine."
LLAMAS = "Llamas eat grass in the Andes mountains."


@pytest.fixture
def library(api, alice):
    """Alice's documents: a two-page PDF and a text file."""
    pdf = upload_ready(api, alice, "atlas.pdf", text_pdf([LLAMAS, FRANCE]))
    txt = upload_ready(api, alice, "notes.txt", b"Bananas are yellow and rich in potassium.")
    return {"pdf": pdf, "txt": txt}


def test_post_streams_session_status_tokens_citations_done(api, alice, library, fake_upstream):
    fake_upstream.configure(reply="Paris is the capital [1].")
    response, received = send(api, alice, "What is the capital of France?")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    kinds = [p["type"] for _, p in received]
    assert kinds[0] == "session" and kinds[-1] == "done" and kinds.count("done") == 1
    assert all(event_id for event_id, _ in received) and len({i for i, _ in received}) == len(received)
    session = received[0][1]
    assert session["session_id"] == response.headers["X-Session-Id"]
    assert session["title"] == "What is the capital of France?"
    statuses = [p["status"] for p in of_type(received, "status")]
    assert statuses == ["Searching your documents", "Found 1 relevant chunk", "Generating response"]
    assert "".join(p["token"] for p in of_type(received, "token")) == "Paris is the capital [1]."
    citation = {"document_id": library["pdf"]["id"], "filename": "atlas.pdf", "chunk_index": 1, "page_number": 2}
    [cited] = of_type(received, "citation")
    assert {k: cited[k] for k in citation} == citation and 0.7 <= cited["relevance_score"] <= 1
    done = received[-1][1]
    assert done["content"] == "Paris is the capital [1]." and done["citations"] == [citation]
    assert done["status"] == "DELIVERED"
    system = fake_upstream.completions[-1]["body"]["messages"][0]
    assert system["role"] == "system" and "cite" in system["content"] and FRANCE in system["content"]
    assert "[1] atlas.pdf, page 2" in system["content"] and LLAMAS not in system["content"]


def test_get_with_auth_token_and_search_options(api, alice, library, fake_upstream):
    fake_upstream.configure(tokens=2)
    response, received = send(api, alice, "llamas grass", method="GET", session_id="",
                              search_options={"k": 2, "score_threshold": 0, "search_type": "hybrid"})
    assert response.status_code == 200
    assert [p["type"] for _, p in received][:2] == ["session", "status"]
    citations = received[-1][1]["citations"]
    assert len(citations) == 2 and citations[0]["filename"] == "atlas.pdf" and citations[0]["page_number"] == 1
    session_id = response.headers["X-Session-Id"]
    response, received = send(api, alice, "and bananas?", method="GET", session_id=session_id)
    assert response.headers["X-Session-Id"] == session_id and of_type(received, "session") == []
    sent = fake_upstream.completions[-1]["body"]["messages"]
    assert [m["content"] for m in sent[1:]] == ["llamas grass", "t0 t1 ", "and bananas?"]


def test_head_posts_nothing(api, alice, fake_upstream):
    """Flask answers HEAD with a GET view, and this GET posts: link checkers must not spend replies."""
    params = {"message": "via head", "auth_token": alice["access_token"]}
    response = api.head("/chat/send", params=params)
    assert response.status_code == 405 and set(response.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert api.get("/chat/sessions", headers=alice.headers).json()["total_count"] == 0
    assert fake_upstream.completions == []


def test_a_null_search_options_means_the_defaults_on_both_methods(api, alice, fake_upstream):
    fake_upstream.configure(tokens=1)
    for method in ("POST", "GET"):
        response, received = send(api, alice, "hi", method=method, search_options=None if method == "POST" else "null")
        assert response.status_code == 200 and received[-1][1]["type"] == "done", response.text


def test_both_methods_are_described_with_their_input_and_events(api):
    spec = api.get("/openapi.json").json()
    post, get = spec["paths"]["/chat/send"]["post"], spec["paths"]["/chat/send"]["get"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/rag.SendRequest")
    params = {p["name"]: p for p in get["parameters"]}
    assert set(params) == {"message", "session_id", "search_options", "dataset_id", "auth_token"}
    assert params["message"]["required"] and "requestBody" not in get
    assert params["search_options"]["schema"]["contentSchema"]["$ref"].endswith("/rag.SearchOptionsIn")
    for op in (post, get):
        assert "text/event-stream" in op["responses"]["200"]["content"] and "204" in op["responses"]
        kinds = [spec["components"]["schemas"][event["$ref"].split("/")[-1]]["properties"]["type"]["const"]
                 for event in op["x-events"]["schema"]["oneOf"]]
        assert kinds == ["session", "status", "token", "citation", "error", "done"]


def test_resume_with_last_event_id_then_204_after_done(api, alice, library, fake_upstream):
    fake_upstream.configure(tokens=20, delay_ms=20)
    seen = []
    params = {"message": "France capital", "auth_token": alice["access_token"]}
    with connect_sse(api, "GET", "/chat/send", params=params) as sse:
        session_id = sse.response.headers["X-Session-Id"]
        for event_id, payload in events(api, "GET", sse):
            seen.append((event_id, payload))
            if payload["type"] == "token" and len(seen) > 6:
                break
    rest_response, rest = send(api, alice, "ignored", method="GET", headers={"Last-Event-ID": seen[-1][0]})
    assert rest_response.status_code == 200
    tokens = [p["token"] for p in of_type(seen + rest, "token")]
    assert tokens == [f"t{i} " for i in range(20)] and rest[-1][1]["type"] == "done"
    after_done = api.get("/chat/send", params=params, headers={"Last-Event-ID": rest[-1][0]})
    assert after_done.status_code == 204
    detail = api.get(f"/chat/sessions/{session_id}", headers=alice.headers).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]  # posted once



def test_resume_follows_the_sessions_status(api, alice, fake_upstream):
    """A resume reads the reply as GET /chat/sessions/{id} reads the session: it goes on in an
    archived session (it posts nothing) and is 404 once the session is deleted (003's or 002's
    DELETED status, as after a delete here), like every 004 route."""
    fake_upstream.configure(tokens=20, delay_ms=20)
    for status, answer in (("ARCHIVED", 200), ("DELETED", 404)):
        seen = []
        with connect_sse(api, "POST", "/chat/send", json={"message": "hello"}, headers=alice.headers) as sse:
            session_uuid = sse.response.headers["X-Session-Id"]
            for event_id, payload in events(api, "POST", sse):
                seen.append((event_id, payload))
                if payload["type"] == "token":
                    break
        with runtime.session() as db:
            chat_id = db.scalar(select(Chat.id).where(Chat.uuid == session_uuid))
        assert api.patch(f"/api/v1/chats/{chat_id}/status", json={"status": status},
                         headers=alice.headers).status_code == 200
        response, rest = send(api, alice, "ignored", headers={"Last-Event-ID": seen[-1][0]})
        assert (status, response.status_code) == (status, answer)
        if answer == 200:
            assert [p["token"] for p in of_type(seen + rest, "token")] == [f"t{i} " for i in range(20)]
        else:
            assert response.json() == {"detail": "Reply not found"}

def test_a_reconnect_between_the_stored_reply_and_its_end_event_gets_the_last_tokens(api, alice, fake_upstream,
                                                                                  monkeypatch):
    """The worker stores a reply, then publishes its end: a reconnect in between (simulated by
    removing the end event) must still get the tokens it had not seen before its done."""
    monkeypatch.setattr(runtime.current().settings, "reply_chunk_window_ms", 5000)  # t1-t5 share an entry
    monkeypatch.setattr(runtime.current().settings, "sse_keepalive_s", 0.2)
    fake_upstream.configure(tokens=6)
    response, received = send(api, alice, "hello")
    tokens = [(event_id, p["token"]) for event_id, p in received if p["type"] == "token"]
    assert [t for _, t in tokens] == [f"t{i} " for i in range(6)] and received[-1][1]["type"] == "done"
    end_id = received[-1][0].split(":")[1]
    with runtime.session() as db:
        chat_id = db.scalar(select(Chat.id).where(Chat.uuid == response.headers["X-Session-Id"]))
    runtime.current().redis.xdel(stream_events.chat_stream_key(chat_id), end_id)
    _, rest = send(api, alice, "x", headers={"Last-Event-ID": tokens[0][0]})  # after t0, alone in its entry
    assert [p.get("token") for _, p in rest if p["type"] == "token"] == ["t1 ", "t2 ", "t3 ", "t4 ", "t5 "]
    assert rest[-1][1]["type"] == "done"


def test_a_resume_from_an_event_the_capped_stream_no_longer_holds_says_events_were_lost(api, alice, fake_upstream):
    """The chat's stream keeps its newest REPLY_STREAM_MAXLEN events: a resume from an older one gets
    an `error` event (`events_lost`) first, then what is left of the reply and its done."""
    fake_upstream.configure(tokens=6)
    response, received = send(api, alice, "hello")
    with runtime.session() as db:
        chat_id = db.scalar(select(Chat.id).where(Chat.uuid == response.headers["X-Session-Id"]))
    runtime.current().redis.xtrim(stream_events.chat_stream_key(chat_id), maxlen=2, approximate=False)
    first_token = next(event_id for event_id, p in received if p["type"] == "token")
    _, rest = send(api, alice, "x", headers={"Last-Event-ID": first_token})
    assert rest[0][1]["type"] == "error" and rest[0][1]["error_code"] == "events_lost"
    assert rest[-2][1] == {"type": "token", "token": "t5 "} and rest[-1][1]["type"] == "done"


def ended_stream(api, account, fake_upstream, monkeypatch, end_session) -> list[dict]:
    """The payloads of a slow reply's EventSource stream opened with `?auth_token=`, `end_session()`
    called at the third, checking it got no done and stopped well before the reply's end."""
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    fake_upstream.configure(tokens=60, delay_ms=50)
    seen = []
    params = {"message": "hello", "auth_token": account["access_token"]}
    with connect_sse(api, "GET", "/chat/send", params=params) as sse:
        for _, payload in events(api, "GET", sse):
            seen.append(payload)
            if len(seen) == 3:
                end_session()
    kinds = [p["type"] for p in seen]
    assert "done" not in kinds and kinds.count("token") < 30
    return seen


def test_logging_out_ends_the_streams_of_that_token(api, alice, fake_upstream, monkeypatch):
    """As its WebSockets close 4401, an EventSource stream opened with `?auth_token=` that POST /auth/logout
    revoked ends within WS_TOKEN_CHECK_S with an `error` event (`session_ended`) and no done."""
    def log_out():
        assert api.post("/api/v1/auth/logout", headers=alice.headers).status_code == 200

    seen = ended_stream(api, alice, fake_upstream, monkeypatch, log_out)
    assert seen[-1]["type"] == "error" and seen[-1]["error_code"] == "session_ended"


def test_deactivating_a_user_ends_their_streams(api, alice, make_user, fake_upstream, monkeypatch):
    """An EventSource stream of a user an admin deactivates ends the same way, with `account_deactivated`."""
    admin = promote(make_user("admin"))
    seen = ended_stream(api, alice, fake_upstream, monkeypatch, lambda: set_active(api, admin, alice, False))
    assert seen[-1] == {"type": "error", "error": "Account deactivated: the session ended",
                        "error_code": "account_deactivated"}


def test_resume_inside_the_citations(api, alice, library, fake_upstream):
    fake_upstream.configure(tokens=1)
    _, received = send(api, alice, "France capital llamas", search_options={"k": 2, "score_threshold": 0})
    citations = [event_id for event_id, p in received if p["type"] == "citation"]
    assert len(citations) == 2
    _, rest = send(api, alice, "x", headers={"Last-Event-ID": citations[0]})
    assert [p["type"] for _, p in rest] == ["citation", "done"] and rest[0][0] == citations[1]


def test_bad_last_event_id(api, alice):
    assert api.post("/chat/send", json={"message": "x"}, headers={**alice.headers, "Last-Event-ID": "garbage"}
                    ).status_code == 400
    unknown = "00000000-0000-4000-8000-000000000000:1-0:0"
    assert api.post("/chat/send", json={"message": "x"}, headers={**alice.headers, "Last-Event-ID": unknown}
                    ).status_code == 404


def test_last_event_id_with_a_non_ascii_digit_is_a_bad_id(api, alice, fake_upstream):
    # A header byte 0xB2 reads as "²", which str.isdigit() takes and int() refuses.
    fake_upstream.configure(tokens=2)
    _, received = send(api, alice, "hello")
    reply_uuid, stream_id, _ = received[-2][0].split(":")
    for index in (b"\xb2", b"1\xb2"):
        header = reply_uuid.encode() + b":" + stream_id.encode() + b":" + index
        response = api.post("/chat/send", json={"message": "x"}, headers={**alice.headers, "Last-Event-ID": header})
        assert response.status_code == 400, index
        assert response.json() == {"detail": "Last-Event-ID is not an event id of /chat/send"}


@pytest.mark.parametrize("options, field", [
    ({"k": 0}, "k"), ({"score_threshold": 1.5}, "score_threshold"), ({"search_type": "FUZZY"}, "search_type"),
    ({"lambda_mult": -0.1}, "lambda_mult"), ({"fetch_k": 0}, "fetch_k"), ({"colour": "red"}, "colour"),
])
def test_out_of_range_options_are_400_naming_the_field(api, alice, options, field):
    response = api.post("/chat/send", json={"message": "hi", "search_options": options}, headers=alice.headers)
    assert response.status_code == 400 and field in json.dumps(response.json()["detail"])
    response = api.get("/chat/send", params={"message": "hi", "auth_token": alice["access_token"],
                                             "search_options": json.dumps(options)})
    assert response.status_code == 400 and field in json.dumps(response.json()["detail"])


def test_send_errors(api, alice, make_user, fake_upstream):
    fake_upstream.configure(tokens=1)
    headers = alice.headers
    assert api.post("/chat/send", json={"message": "  "}, headers=headers).status_code == 400
    assert api.post("/chat/send", json={}, headers=headers).status_code == 400
    assert api.post("/chat/send", content=b"nope", headers=headers).status_code == 400
    assert api.post("/chat/send", json={"message": "x", "session_id": "12"}, headers=headers).status_code == 400
    assert api.get("/chat/send", params={"message": "x", "auth_token": alice["access_token"],
                                         "search_options": "{bad"}).status_code == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.post("/chat/send", json={"message": "x", "session_id": missing}, headers=headers).status_code == 404
    assert api.post("/chat/send", json={"message": "x", "dataset_id": missing}, headers=headers).status_code == 404
    assert api.post("/chat/send", json={"message": "x"}).status_code == 401
    assert api.get("/chat/send", params={"message": "x", "auth_token": "bad"}).status_code == 401
    response, _ = send(api, alice, "mine")
    eve = make_user("eve")
    other = api.post("/chat/send", json={"message": "x", "session_id": response.headers["X-Session-Id"]},
                     headers=eve.headers)
    assert other.status_code == 404


def test_a_message_to_a_session_deleted_meanwhile_is_404(api, alice, fake_upstream):
    """The message found its session while the session's deletion was committing: 404 as for a
    session already deleted, not the message's foreign key error (a 500)."""
    fake_upstream.configure(tokens=1)
    session_uuid = send(api, alice, "first")[0].headers["X-Session-Id"]
    with runtime.session() as db:
        chat_id = db.scalar(select(Chat.id).where(Chat.uuid == session_uuid))
    answer = sent_while_deleting(Chat.__table__, chat_id, lambda: api.post(
        "/chat/send", json={"message": "again", "session_id": session_uuid}, headers=alice.headers))
    assert answer.status_code == 404 and answer.json() == {"detail": "Chat session not found"}
    assert runtime.current().redis.zcard(leases.replies_key(alice["user_id"])) == 0  # its slot given back


def test_no_documents_still_answers(api, make_user, fake_upstream):
    fake_upstream.configure(tokens=2)
    bob = make_user("bob")
    _, received = send(api, bob, "anything?")
    assert "No relevant documents found" in [p["status"] for p in of_type(received, "status")]
    assert received[-1][1] == {"type": "done", "content": "t0 t1 ", "citations": [], "status": "DELIVERED"}


def test_users_never_retrieve_each_others_chunks(api, alice, make_user, library, fake_upstream):
    fake_upstream.configure(tokens=1)
    eve = make_user("eve")
    upload_ready(api, eve, "eve.txt", b"Eve keeps notes about cats.")
    for search_type in ("SIMILARITY", "HYBRID", "MMR"):
        _, received = send(api, eve, "capital of France Paris llamas bananas",
                           search_options={"search_type": search_type, "k": 10, "score_threshold": 0})
        assert {c["filename"] for c in received[-1][1]["citations"]} == {"eve.txt"}, search_type


def test_dataset_limits_the_search(api, alice, library, fake_upstream):
    fake_upstream.configure(tokens=1)
    dataset = api.post("/datasets", json={"name": "fruit", "document_ids": [library["txt"]["id"]]},
                       headers=alice.headers).json()
    _, received = send(api, alice, "capital of France", dataset_id=dataset["id"],
                       search_options={"score_threshold": 0})
    assert {c["filename"] for c in received[-1][1]["citations"]} == {"notes.txt"}


BRIDGE = "The bridge project budget is four million euros; the bridge project ends in March."


@pytest.mark.parametrize("provider", ["auto", "none"])
def test_a_follow_up_also_searches_with_the_earlier_questions(api, alice, fake_upstream, monkeypatch, provider):
    """"tell me more" holds nothing to search with: a short message is searched together with the
    session's earlier questions; a self-contained one with itself only."""
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", provider)
    upload_ready(api, alice, "bridge.txt", BRIDGE.encode())
    upload_ready(api, alice, "llamas.txt", b"Llamas graze on Andes grasslands.")
    fake_upstream.configure(tokens=1)
    response, received = send(api, alice, "What is the budget of the bridge project?")
    session_id = response.headers["X-Session-Id"]
    assert [c["filename"] for c in received[-1][1]["citations"]] == ["bridge.txt"]
    for follow_up in ("tell me more", "and what about the second one?"):
        _, received = send(api, alice, follow_up, session_id=session_id)
        assert [c["filename"] for c in received[-1][1]["citations"]] == ["bridge.txt"], follow_up
        assert "Searching with your earlier questions too" in [p["status"] for p in of_type(received, "status")]
    _, received = send(api, alice, "Do llamas graze on Andes grasslands?", session_id=session_id)
    assert [c["filename"] for c in received[-1][1]["citations"]] == ["llamas.txt"]


@pytest.mark.parametrize("search_type", ["SIMILARITY", "HYBRID", "MMR"])
def test_a_passage_uploaded_twice_is_given_and_cited_once(api, alice, fake_upstream, search_type):
    """A file uploaded twice (or a passage two documents share) is one excerpt: the best-scored copy
    is kept and the next distinct chunk fills its place."""
    upload_ready(api, alice, "bridge.txt", BRIDGE.encode())
    upload_ready(api, alice, "bridge copy.txt", BRIDGE.replace(" ", "  ").encode())
    upload_ready(api, alice, "llamas.txt", b"Llamas graze on Andes grasslands.")
    fake_upstream.configure(tokens=1)
    options = {"search_type": search_type, "k": 2, "score_threshold": 0}
    session_id = None
    for query in ("What is the budget of the bridge project?", "tell me more"):  # one search, then two merged
        response, received = send(api, alice, query, session_id=session_id, search_options=options)
        session_id = response.headers["X-Session-Id"]
        citations = received[-1][1]["citations"]
        assert [c["filename"] for c in citations][1:] == ["llamas.txt"], citations
        assert citations[0]["filename"] in ("bridge.txt", "bridge copy.txt")
        system = fake_upstream.completions[-1]["body"]["messages"][0]["content"]
        assert system.count("million") == 1 and "[2] llamas.txt" in system


def test_without_embeddings_search_is_full_text_and_says_so(api, alice, library, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", "none")
    fake_upstream.configure(tokens=1)
    _, received = send(api, alice, "Where is the Seine?")
    statuses = [p["status"] for p in of_type(received, "status")]
    assert any("keywords only" in s for s in statuses)
    assert [c["page_number"] for c in received[-1][1]["citations"]] == [2]


def test_upstream_failure_is_an_error_event_then_done(api, alice, library, fake_upstream):
    fake_upstream.configure(fail_status=401)
    _, received = send(api, alice, "France?")
    assert [p["type"] for _, p in received][-2:] == ["error", "done"]
    error = of_type(received, "error")[0]
    assert error["error_code"] == "invalid_api_key" and error["error"]
    assert received[-1][1]["status"] == "FAILED"
    # What done lists as citations also came as citation events (the partial text may cite them).
    cited = [{k: c[k] for k in ("document_id", "chunk_index")} for c in of_type(received, "citation")]
    assert cited and cited == [{k: c[k] for k in ("document_id", "chunk_index")} for c in received[-1][1]["citations"]]


def test_keepalive_comment_while_slow(api, alice, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "sse_keepalive_s", 0.2)
    fake_upstream.configure(tokens=1, first_delay_ms=700)
    with api.stream("POST", "/chat/send", json={"message": "slow"}, headers=alice.headers) as response:
        raw = "".join(response.iter_text())
    payloads = [checked(api, "POST", line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    assert ": keep-alive" in raw and payloads[-1]["type"] == "done"


@pytest.fixture
def sessions_created():
    """The titles of the chats inserted while the test runs, even ones deleted again."""
    titles: list[str] = []

    def record(mapper, connection, chat):
        titles.append(chat.title)

    sqlalchemy.event.listen(Chat, "after_insert", record)
    yield titles
    sqlalchemy.event.remove(Chat, "after_insert", record)


def test_ten_concurrent_streams_then_429(api, make_user, fake_upstream, sessions_created):
    fake_upstream.configure(tokens=3, first_delay_ms=1500)
    carol = make_user("carol")
    streams = [api.stream("POST", "/chat/send", json={"message": f"m{i}"}, headers=carol.headers) for i in range(10)]
    opened = [s.__enter__() for s in streams]
    try:
        assert all(r.status_code == 200 for r in opened)
        over = api.post("/chat/send", json={"message": "one too many"}, headers=carol.headers)
        assert over.status_code == 429 and over.headers["Retry-After"] == "5"
        assert "one too many" not in sessions_created  # refused before a session existed
        assert "Retry-After" not in opened[0].headers
    finally:
        for s in streams:
            s.__exit__(None, None, None)
    sessions = api.get("/chat/sessions", headers=carol.headers).json()
    assert sessions["total_count"] == 10  # the refused message left no empty session


def test_resuming_a_stream_at_the_limit_takes_no_new_slot(api, alice, fake_upstream, monkeypatch):
    """An EventSource reconnecting while its reply still streams must not be refused as one too many."""
    monkeypatch.setattr(runtime.current().settings, "max_concurrent_streams", 1)
    fake_upstream.configure(tokens=30, delay_ms=50)
    with connect_sse(api, "POST", "/chat/send", json={"message": "hi"}, headers=alice.headers) as sse:
        last_id = next(event_id for event_id, payload in events(api, "POST", sse) if payload["type"] == "token")
    assert api.post("/chat/send", json={"message": "another"}, headers=alice.headers).status_code == 429
    response, rest = send(api, alice, "ignored", headers={"Last-Event-ID": last_id})
    assert response.status_code == 200 and rest[-1][1]["type"] == "done"


def test_query_string_token_is_never_logged(api, alice, fake_upstream, caplog):
    fake_upstream.configure(tokens=1)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        send(api, alice, "log me", method="GET")
        time.sleep(0.2)
    assert caplog.records and alice["access_token"] not in caplog.text


def test_queue_unavailable_is_503_and_the_message_is_kept(api, alice):
    with enqueue_refused():
        response = api.post("/chat/send", json={"message": "kept?"}, headers=alice.headers)
    assert response.status_code == 503
    [session] = api.get("/chat/sessions", headers=alice.headers).json()["sessions"]
    messages = api.get(f"/chat/sessions/{session['id']}", headers=alice.headers).json()["messages"]
    assert [m["content"] for m in messages][0] == "kept?"
    assert messages[1]["metadata"]["status"] == "FAILED"
    assert messages[1]["metadata"]["error_code"] == "queue_unavailable"


def test_a_rag_reply_stops_like_any_reply(api, alice, library, fake_upstream):
    fake_upstream.configure(tokens=200, delay_ms=20)
    with connect_sse(api, "POST", "/chat/send", json={"message": "France"}, headers=alice.headers) as sse:
        session_id = sse.response.headers["X-Session-Id"]
        reply_id = None
        received = []
        for event_id, payload in events(api, "POST", sse):
            received.append(payload)
            if payload["type"] == "token" and reply_id is None:
                reply_id = event_id.split(":")[0]
                stop = api.post(f"/api/v1/chat/chats/{session_id}/messages/{reply_id}/stop", headers=alice.headers)
                assert stop.status_code == 200
    assert received[-1]["type"] == "done" and received[-1]["status"] == "CANCELLED"
    assert sum(1 for p in received if p["type"] == "token") < 200


def test_a_stopping_process_ends_the_stream_and_the_client_resumes(api, alice, library, fake_upstream, monkeypatch):
    """SIGTERM in gunicorn calls close_all: the stream ends before `done`, and a resume gets the rest."""
    from web.realtime import going_away

    monkeypatch.setattr(going_away, "_sockets", going_away.OpenSockets())  # this process is not really stopping
    fake_upstream.configure(tokens=20, delay_ms=50)
    seen, closed = [], 0
    with connect_sse(api, "POST", "/chat/send", json={"message": "France capital"}, headers=alice.headers) as sse:
        for event_id, payload in events(api, "POST", sse):
            seen.append((event_id, payload))
            if len(of_type(seen, "token")) == 3 and not closed:
                closed = going_away.open_sockets().close_all()
    assert closed == 1 and seen[-1][1]["type"] == "token" and len(of_type(seen, "token")) < 20
    going_away._sockets = going_away.OpenSockets()
    _, rest = send(api, alice, "ignored", headers={"Last-Event-ID": seen[-1][0]})
    assert [p["token"] for p in of_type(seen + rest, "token")] == [f"t{i} " for i in range(20)]
    assert rest[-1][1]["type"] == "done"


def test_only_chunks_the_model_was_given_are_cited(api, alice, fake_upstream):
    """k may ask for more chunks than the model's context holds: the citations are the ones it got."""
    paragraphs = [f"Section {i}: alpha bravo castle " + " ".join(f"word{i}x{j}" for j in range(150)) for i in range(120)]
    upload_ready(api, alice, "long.txt", "\n\n".join(paragraphs).encode())
    fake_upstream.configure(tokens=1)
    _, received = send(api, alice, "alpha bravo castle", search_options={"k": 50, "score_threshold": 0})
    system = fake_upstream.completions[-1]["body"]["messages"][0]["content"]
    given = len(re.findall(r"^\[\d+\] long\.txt", system, flags=re.MULTILINE))
    cited = of_type(received, "citation")
    assert 0 < given < 50 and len(cited) == given == len(received[-1][1]["citations"])
    assert [c["marker"] for c in cited] == list(range(1, given + 1))
    # The stored context is the same chunks: context_ids and the best score are of those given.
    detail = api.get(f"/chat/sessions/{received[0][1]['session_id']}", headers=alice.headers).json()
    reply, context = detail["messages"][-1], detail["session"]["last_context"]
    assert len(reply["sources"]) == len(reply["context_ids"]) == len(context["context_ids"]) == given
    assert reply["context_ids"] == context["context_ids"]
    assert reply["relevance_score"] == context["relevance_score"] == max(s["relevance_score"] for s in reply["sources"])


def test_no_excerpts_no_citing_instruction(api, alice, library, fake_upstream):
    """A chat keeping gpt-4's whole window for the answer has no room for excerpts: the model was
    still told to answer from "the numbered document excerpts below", with none below."""
    chat = api.post("/api/v1/chat/chats", json={"title": "full", "ai_model": "gpt-4", "max_tokens": 8192},
                    headers=alice.headers).json()
    _, received = send(api, alice, "What is the capital of France?", session_id=chat["id"],
                       search_options={"score_threshold": 0})
    sent = fake_upstream.completions[-1]["body"]["messages"]
    assert not [m for m in sent if "excerpts" in m["content"]], sent
    assert of_type(received, "citation") == [] and received[-1][1]["citations"] == []


def test_a_failure_after_the_new_session_frees_its_slot_and_leaves_no_session(api, alice):
    """The slot is taken before the session is made: anything failing before the message is stored
    (here reading the chat stream's position: the new session's stream key holds a string, so Redis
    refuses the read with WRONGTYPE) gives the slot back and removes the empty session."""
    redis, created = runtime.current().redis, []

    def unreadable_stream(mapper, connection, chat):
        created.append(chat.id)
        redis.set(stream_events.chat_stream_key(chat.id), "not a stream")

    sqlalchemy.event.listen(Chat, "after_insert", unreadable_stream)
    try:
        response = api.post("/chat/send", json={"message": "lost on the way"}, headers=alice.headers)
    finally:
        sqlalchemy.event.remove(Chat, "after_insert", unreadable_stream)
        for chat_id in created:
            redis.delete(stream_events.chat_stream_key(chat_id))
    assert response.status_code == 500 and created and "WRONGTYPE" not in response.text
    assert redis.zcard(leases.replies_key(alice["user_id"])) == 0
    titles = [s["title"] for s in api.get("/chat/sessions", headers=alice.headers).json()["sessions"]]
    assert "lost on the way" not in titles


def test_without_an_api_key_a_message_is_refused_before_anything_is_stored(api, alice, fake_upstream, monkeypatch):
    """As on 001: the reply could only fail `no_api_key`, and a retry would store the message again."""
    fake_upstream.configure(tokens=1)
    _, first = send(api, alice, "first")
    session_id = first[0][1]["session_id"]
    monkeypatch.setattr(runtime.current().settings, "openai_api_key", None)
    for method in ("POST", "GET"):
        for fields in ({}, {"session_id": session_id}):
            refused, _ = send(api, alice, "again", method=method, **fields)
            assert refused.status_code == 400, (method, fields)
            assert refused.json() == {"detail": "OpenAI API key not configured: set one in Settings to chat with AI"}
    sessions = api.get("/chat/sessions", headers=alice.headers).json()
    assert sessions["total_count"] == 1
    assert len(api.get(f"/chat/sessions/{session_id}", headers=alice.headers).json()["messages"]) == 2
