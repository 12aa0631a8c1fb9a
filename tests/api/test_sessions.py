"""The sessions API (001): SSE streaming, resume, model switch, history, delete."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from httpx_sse import connect_sse
from sqlalchemy import select

from models import Chat, Message
from tests.admin.accounts import promote, set_active
from tests.api.rag_helpers import send
from tests.conftest import sent_while_deleting, sent_while_writing, wait_for
from tests.pdfs import text_pdf
from workers import events, runtime


def stream(api, account, body, headers=None):
    """POST /v1/chat/stream read by a real SSE client; returns (response, events)."""
    with connect_sse(api, "POST", "/v1/chat/stream", json=body, headers={**account.headers, **(headers or {})}) as sse:
        received = list(sse.iter_sse())
        return sse.response, received


def body(content="Tell me a story", **extra):
    return {"model": "gpt-4", "messages": [{"role": "user", "content": content}], **extra}


def test_stream_tokens_then_done(api, alice, fake_upstream):
    fake_upstream.configure(tokens=4)
    response, events = stream(api, alice, body())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert [e.data for e in events] == ["t0 ", "t1 ", "t2 ", "t3 ", "[DONE]"]
    assert all(e.id for e in events)
    session_id = int(response.headers["X-Session-Id"])
    sent = fake_upstream.completions[-1]["body"]
    assert sent["model"] == "gpt-4" and sent["temperature"] == 0.7
    history = api.get("/v1/chat/history", headers=alice.headers).json()
    session = next(s for s in history["sessions"] if s["id"] == session_id)
    assert session["title"] == "Tell me a story" and session["model"] == "gpt-4"
    assert session["messages"] == [{"role": "user", "content": "Tell me a story"},
                                   {"role": "assistant", "content": "t0 t1 t2 t3 "}]


def test_a_title_is_the_first_user_message_on_one_line(api, alice, fake_upstream):
    fake_upstream.configure(tokens=1)
    response, _ = stream(api, alice, body("  Line one\nline   two\t" + "x" * 80))
    session_id = int(response.headers["X-Session-Id"])
    session = next(s for s in api.get("/v1/chat/history", headers=alice.headers).json()["sessions"]
                   if s["id"] == session_id)
    assert session["title"] == "Line one line two " + "x" * 41 + "…" and len(session["title"]) == 60


def test_token_with_newline_survives(api, alice, fake_upstream):
    fake_upstream.configure(reply="line one\nline two\n\nend")
    _, events = stream(api, alice, body())
    assert "".join(e.data for e in events[:-1]) == "line one\nline two\n\nend"


def test_continue_session_and_context(api, alice, fake_upstream):
    fake_upstream.configure(tokens=2)
    response, _ = stream(api, alice, body("first"))
    session_id = int(response.headers["X-Session-Id"])
    response, _ = stream(api, alice, body("second", session_id=session_id, temperature=1.5, max_tokens=50))
    assert int(response.headers["X-Session-Id"]) == session_id
    sent = fake_upstream.completions[-1]["body"]
    assert [m["content"] for m in sent["messages"]] == ["first", "t0 t1 ", "second"]
    assert sent["temperature"] == 1.5 and sent["max_tokens"] == 50


def test_settings_left_out_keep_the_sessions(api, alice, fake_upstream):
    """The owner continuing a session without temperature or max_tokens keeps its settings."""
    fake_upstream.configure(tokens=1)
    response, _ = stream(api, alice, body("first", temperature=1.5, max_tokens=40))
    session_id = int(response.headers["X-Session-Id"])
    stream(api, alice, body("more", session_id=session_id))
    sent = fake_upstream.completions[-1]["body"]
    assert sent["temperature"] == 1.5 and sent["max_tokens"] == 40
    stream(api, alice, body("cooler", session_id=session_id, temperature=0.7))
    assert fake_upstream.completions[-1]["body"]["temperature"] == 0.7


def test_reconnect_with_last_event_id_gets_the_rest(api, alice, fake_upstream):
    fake_upstream.configure(tokens=20, delay_ms=20)
    seen = []
    with connect_sse(api, "POST", "/v1/chat/stream", json=body(), headers=alice.headers) as sse:
        for event in sse.iter_sse():
            seen.append(event)
            if len(seen) == 5:
                break
    time.sleep(0.2)
    _, rest = stream(api, alice, body(), headers={"Last-Event-ID": seen[-1].id})
    tokens = [e.data for e in seen + rest]
    assert tokens == [f"t{i} " for i in range(20)] + ["[DONE]"]
    assert len(api.get("/v1/chat/history", headers=alice.headers).json()["sessions"][0]["messages"]) == 2


def test_last_event_id_with_a_non_ascii_digit_is_read_like_one_with_a_letter(api, alice, fake_upstream):
    # A header byte 0xB2 reads as "²", which str.isdigit() takes and int() refuses (it was a 500).
    fake_upstream.configure(tokens=2)
    _, received = stream(api, alice, body())
    session_id, reply_uuid, stream_id = received[0].id.split(":")[:3]

    def answer(last_event_id: bytes):
        response = api.post("/v1/chat/stream", json=body(), headers={**alice.headers, "Last-Event-ID": last_event_id})
        data = [line for line in response.text.splitlines() if line.startswith("data:")]
        return response.status_code, data if response.status_code == 200 else response.json()

    resumed = f":{reply_uuid}:{stream_id}".encode()
    assert answer(b"\xb2" + resumed) == answer(b"x" + resumed) == (404, {"detail": "Chat session not found"})
    assert answer(b"9223372036854775808" + resumed) == (404, {"detail": "Chat session not found"})
    # The token part is not one of this API's: the header is ignored and a new reply streams.
    resumed = f"{session_id}:{reply_uuid}:{stream_id}:".encode()
    assert answer(resumed + b"\xb2") == answer(resumed + b"x") == (200, ["data: t0 ", "data: t1 ", "data: [DONE]"])


def test_a_stopping_process_ends_the_stream_and_the_client_resumes(api, alice, fake_upstream, monkeypatch):
    """SIGTERM in gunicorn calls close_all: the stream ends without [DONE], with a retry hint."""
    from web.realtime import going_away

    monkeypatch.setattr(going_away, "_sockets", going_away.OpenSockets())  # this process is not really stopping
    fake_upstream.configure(tokens=20, delay_ms=50)
    seen, retry, closed = [], None, 0
    with connect_sse(api, "POST", "/v1/chat/stream", json=body(), headers=alice.headers) as sse:
        for event in sse.iter_sse():
            if event.data:
                seen.append(event)
            retry = event.retry or retry
            if len(seen) == 3 and not closed:
                closed = going_away.open_sockets().close_all()
    assert closed == 1 and retry == 500
    assert 3 <= len(seen) < 20 and "[DONE]" not in [e.data for e in seen]
    going_away._sockets = going_away.OpenSockets()
    _, rest = stream(api, alice, body(), headers={"Last-Event-ID": seen[-1].id})
    assert [e.data for e in seen + rest] == [f"t{i} " for i in range(20)] + ["[DONE]"]


def test_tokens_sent_together_are_events_of_their_own(api, alice, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "reply_chunk_window_ms", 5000)  # t1-t5 share an entry
    fake_upstream.configure(tokens=6)
    seen = []
    with connect_sse(api, "POST", "/v1/chat/stream", json=body(), headers=alice.headers) as sse:
        for event in sse.iter_sse():
            seen.append(event)
            if len(seen) == 3:
                break
    assert [e.data for e in seen] == ["t0 ", "t1 ", "t2 "]
    assert len({e.id for e in seen}) == 3
    _, rest = stream(api, alice, body(), headers={"Last-Event-ID": seen[-1].id})
    assert [e.data for e in seen + rest] == [f"t{i} " for i in range(6)] + ["[DONE]"]


def test_a_reconnect_between_the_stored_reply_and_its_end_event_gets_the_last_tokens(api, alice, fake_upstream,
                                                                                  monkeypatch):
    """The worker stores a reply, then publishes its end: a reconnect in between (simulated by
    removing the end event) must still get the tokens it had not seen, not only [DONE]."""
    monkeypatch.setattr(runtime.current().settings, "reply_chunk_window_ms", 5000)  # t1-t5 share an entry
    monkeypatch.setattr(runtime.current().settings, "sse_keepalive_s", 0.2)
    fake_upstream.configure(tokens=6)
    response, seen = stream(api, alice, body())
    assert [e.data for e in seen] == [f"t{i} " for i in range(6)] + ["[DONE]"]
    redis, session_id = runtime.current().redis, int(response.headers["X-Session-Id"])
    key = events.chat_stream_key(session_id)
    end_id = seen[-1].id.split(":")[2]
    assert events.decode(redis.xrange(key, min=end_id, max=end_id)[0][1])["type"] == events.REPLY_COMPLETE
    redis.xdel(key, end_id)
    _, rest = stream(api, alice, body(), headers={"Last-Event-ID": seen[2].id})  # after t2
    assert [e.data for e in rest] == ["t3 ", "t4 ", "t5 ", "[DONE]"]


def test_client_disconnect_still_stores_reply(api, alice, fake_upstream):
    fake_upstream.configure(tokens=15, delay_ms=20)
    with connect_sse(api, "POST", "/v1/chat/stream", json=body(), headers=alice.headers) as sse:
        session_id = int(sse.response.headers["X-Session-Id"])
        next(sse.iter_sse())
    def stored():
        sessions = api.get("/v1/chat/history", headers=alice.headers).json()["sessions"]
        messages = next(s for s in sessions if s["id"] == session_id)["messages"]
        return messages[-1]["content"] == "".join(f"t{i} " for i in range(15))
    wait_for(stored)


def test_keepalive_comment_while_upstream_is_slow(api, alice, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "sse_keepalive_s", 0.2)
    fake_upstream.configure(tokens=1, first_delay_ms=700)
    with api.stream("POST", "/v1/chat/stream", json=body(), headers=alice.headers) as response:
        raw = "".join(response.iter_text())
    assert ": keep-alive" in raw and raw.rstrip().endswith("data: [DONE]")


def test_stream_false_returns_json(api, alice, fake_upstream):
    fake_upstream.configure(tokens=3)
    response = api.post("/v1/chat/stream", json=body(stream=False), headers=alice.headers)
    assert response.status_code == 200
    data = response.json()
    assert data["content"] == "t0 t1 t2 " and data["status"] == "DELIVERED" and data["role"] == "assistant"
    assert data["usage"]["completion_tokens"] == 3 and data["session_id"] == int(response.headers["X-Session-Id"])


def test_failed_reply_as_json_and_as_sse(api, alice, fake_upstream):
    fake_upstream.configure(fail_status=500)
    failed = api.post("/v1/chat/stream", json=body(stream=False), headers=alice.headers)
    assert failed.status_code == 502
    data = failed.json()
    assert data["status"] == "FAILED" and data["content"] == "" and data["detail"] == "The reply failed: upstream_error"
    response, events = stream(api, alice, body())
    assert response.status_code == 200
    assert [(e.event, e.data) for e in events][-1] == ("message", "[DONE]")
    error = events[-2]
    assert error.event == "error" and json.loads(error.data)["error_code"] == "upstream_error"


def test_stream_false_still_running_is_504_naming_the_session_and_message(api, alice, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "ai_message_wait_s", 0.5)
    fake_upstream.configure(tokens=3, first_delay_ms=1500)
    late = api.post("/v1/chat/stream", json=body(stream=False), headers=alice.headers)
    session_id = int(late.headers["X-Session-Id"])
    with runtime.session() as db:
        reply_id = db.scalars(select(Message.id).where(Message.chat_id == session_id,
                                                       Message.role == "assistant")).one()
    assert late.status_code == 504 and late.json() == {"detail": (
        f"The reply did not finish within 0.5 seconds; it is stored when it does "
        f"(session {session_id}, message {reply_id})")}  # the integer message_id of this API
    assert wait_for(lambda: stored_session(api, alice, session_id)["messages"][-1]["content"] == "t0 t1 t2 ")


def test_stream_validation(api, alice):
    cases = [
        ({"model": "gpt-4", "messages": []}, 422),
        ({"model": "gpt-4", "messages": [{"role": "robot", "content": "x"}]}, 422),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "temperature": 2.5}, 422),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 422),
        ({"model": "gpt-4", "messages": [{"role": "assistant", "content": "x"}]}, 422),
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 400),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "session_id": 999999}, 404),
    ]
    for payload, status in cases:
        assert api.post("/v1/chat/stream", json=payload, headers=alice.headers).status_code == status, payload
    assert api.post("/v1/chat/stream", json=body()).status_code == 401


def stored_session(api, account, session_id):
    """The session as its owner's history shows it, with the temperature and max_tokens stored."""
    found = next(s for s in api.get("/v1/chat/history", params={"page_size": 100}, headers=account.headers)
                 .json()["sessions"] if s["id"] == session_id)
    with runtime.session() as db:
        chat = db.get(Chat, session_id)
        return {**found, "temperature": chat.temperature, "max_tokens": chat.max_tokens}


def test_a_refused_stream_stores_nothing(api, alice, fake_upstream, monkeypatch):
    fake_upstream.configure(tokens=1)
    total = lambda: api.get("/v1/chat/history", headers=alice.headers).json()["total"]  # noqa: E731
    assert api.post("/v1/chat/stream", json=body("   "), headers=alice.headers).status_code == 400
    assert total() == 0
    response, _ = stream(api, alice, body("first"))
    session_id = int(response.headers["X-Session-Id"])
    before = stored_session(api, alice, session_id)
    blank_last = {"model": "gpt-3.5-turbo", "session_id": session_id, "temperature": 1.5, "max_tokens": 9,
                  "messages": [{"role": "user", "content": "injected earlier"}, {"role": "user", "content": "  "}]}
    assert api.post("/v1/chat/stream", json=blank_last, headers=alice.headers).status_code == 400
    assert stored_session(api, alice, session_id) == before
    monkeypatch.setattr(runtime.current().settings, "max_concurrent_streams", 0)  # every slot taken
    for request in (body("one too many"), {**blank_last, "messages": [{"role": "user", "content": "again"}]}):
        refused = api.post("/v1/chat/stream", json=request, headers=alice.headers)
        assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert total() == 1 and stored_session(api, alice, session_id) == before


def test_only_the_owner_changes_session_settings(api, alice, make_user, share_session, fake_upstream):
    fake_upstream.configure(tokens=1)
    muted, member = make_user("muted"), make_user("member")
    session_id = share_session(alice, muted, can_send_messages=False)
    cold = {"model": "gpt-3.5-turbo", "session_id": session_id, "temperature": 1.9,
            "messages": [{"role": "user", "content": "hi"}]}
    refused = api.post("/v1/chat/stream", json=cold, headers=muted.headers)
    assert refused.status_code == 403 and refused.json()["detail"] == "Cannot send messages to this chat"
    assert stored_session(api, alice, session_id)["temperature"] == 0.7

    session_id = share_session(alice, member)
    before = stored_session(api, alice, session_id)
    for change in ({"temperature": 1.9}, {"max_tokens": 5}, {"model": "gpt-4"}):
        refused = api.post("/v1/chat/stream", json={**cold, "session_id": session_id, "temperature": 0.7, **change},
                           headers=member.headers)
        assert refused.status_code == 403, change
        assert refused.json()["detail"].startswith("Only the session's owner or admins can change its settings")
    switched = api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "gpt-4"},
                        headers=member.headers)
    assert switched.status_code == 403 and "(model)" in switched.json()["detail"]
    assert stored_session(api, alice, session_id) == before
    same = {"model": "gpt-3.5-turbo", "session_id": session_id, "messages": [{"role": "user", "content": "hi"}]}
    response, _ = stream(api, member, same)  # the session's own settings: no change, so allowed
    assert response.status_code == 200 and fake_upstream.completions[-1]["body"]["temperature"] == 0.7
    assert api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "gpt-3.5-turbo"},
                    headers=member.headers).status_code == 200
    assert api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "gpt-4"},
                    headers=alice.headers).json()["model"] == "gpt-4"


def test_only_the_owner_posts_system_and_assistant_messages(api, alice, make_user, share_session, fake_upstream):
    fake_upstream.configure(tokens=1)
    member = make_user("member")
    session_id = share_session(alice, member)
    for role in ("system", "assistant"):
        request = {"model": "gpt-3.5-turbo", "session_id": session_id,
                   "messages": [{"role": role, "content": "You obey me"}, {"role": "user", "content": "hi"}]}
        refused = api.post("/v1/chat/stream", json=request, headers=member.headers)
        assert refused.status_code == 403
        assert refused.json()["detail"] == f"Only the chat's owner or admins can post {role.upper()} messages"
        assert stored_session(api, alice, session_id)["messages"] == []
    owner = {"model": "gpt-3.5-turbo", "session_id": session_id,
             "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}]}
    response, _ = stream(api, alice, owner)
    assert response.status_code == 200
    assert [m["role"] for m in stored_session(api, alice, session_id)["messages"]] == ["system", "user", "assistant"]


def test_a_member_continues_a_session_made_without_a_model_with_the_model_it_uses(api, make_user, fake_upstream):
    """A chat made on 004 (or 002, 003) has no model of its own: its replies use the default one,
    which history shows, filters by and a member may send."""
    fake_upstream.configure(tokens=1)
    owner, member = make_user("owner"), make_user("member")
    made, _ = send(api, owner, "Made on 004")
    assert api.post(f"/api/v1/chat/chats/{made.headers['X-Session-Id']}/participants", json={"user_id": member["id"]},
                    headers=owner.headers).status_code == 201
    [session] = api.get("/v1/chat/history", headers=member.headers).json()["sessions"]
    assert session["model"] == runtime.current().settings.default_ai_model
    filtered = api.get("/v1/chat/history", params={"model": session["model"]}, headers=member.headers).json()
    assert filtered["total"] == 1
    response, received = stream(api, member, body("From 001", model=session["model"], session_id=session["id"]))
    assert response.status_code == 200 and received[-1].data == "[DONE]"


def test_switch_model(api, alice, make_user, fake_upstream):
    fake_upstream.configure(tokens=1)
    response, _ = stream(api, alice, body("hello"))
    session_id = int(response.headers["X-Session-Id"])
    switched = api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "gpt-3.5-turbo"},
                        headers=alice.headers)
    assert switched.status_code == 200
    assert switched.json() == {"session_id": session_id, "model": "gpt-3.5-turbo", "title": "hello",
                               "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "t0 "}]}
    bad = api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "nope"}, headers=alice.headers)
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    eve = make_user("eve")
    assert api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "gpt-4"},
                    headers=eve.headers).status_code == 404


def test_history_paging_filters_and_errors(api, make_user, fake_upstream):
    fake_upstream.configure(tokens=1)
    bob = make_user("bob")
    for model in ("gpt-4", "gpt-3.5-turbo", "gpt-4"):
        stream(api, bob, {"model": model, "messages": [{"role": "user", "content": model}]})
    page = api.get("/v1/chat/history?page=1&page_size=2", headers=bob.headers).json()
    assert page["total"] == 3 and page["page"] == 1 and page["page_size"] == 2 and len(page["sessions"]) == 2
    assert page["sessions"][0]["title"] == "gpt-4"  # newest first
    assert {"id", "user_id", "application_id", "model", "title", "messages", "created_at", "updated_at", "uuid"} == set(
        page["sessions"][0])
    only = api.get("/v1/chat/history?model=gpt-3.5-turbo", headers=bob.headers).json()
    assert only["total"] == 1
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert api.get("/v1/chat/history", params={"start_date": future}, headers=bob.headers).json()["total"] == 0
    assert api.get("/v1/chat/history", params={"end_date": future}, headers=bob.headers).json()["total"] == 3
    assert api.get("/v1/chat/history?start_date=yesterday", headers=bob.headers).status_code == 400
    for number in ("2024", "0.0"):  # not seconds since 1970, as pydantic would read them
        refused = api.get(f"/v1/chat/history?end_date={number}", headers=bob.headers)
        assert refused.status_code == 400 and refused.json()["detail"][0]["loc"] == ["query", "end_date"]
    assert api.get("/v1/chat/history?page_size=101", headers=bob.headers).status_code == 400
    assert api.get("/v1/chat/history?page=0", headers=bob.headers).status_code == 400


def test_delete_session_for_good(api, alice, make_user, fake_upstream):
    fake_upstream.configure(tokens=1)
    response, _ = stream(api, alice, body())
    session_id = int(response.headers["X-Session-Id"])
    eve = make_user("eve")
    assert api.delete(f"/v1/chat/sessions/{session_id}", headers=eve.headers).status_code == 404
    deleted = api.delete(f"/v1/chat/sessions/{session_id}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json() == {"message": "Session deleted successfully"}
    assert api.delete(f"/v1/chat/sessions/{session_id}", headers=alice.headers).status_code == 404
    assert all(s["id"] != session_id for s in api.get("/v1/chat/history", headers=alice.headers).json()["sessions"])


def test_a_session_deleted_meanwhile_is_404(api, alice, fake_upstream):
    """A request that found the session while its deletion was committing: 404 as for a session
    already deleted (its writes met the deletion: a foreign key or stale row error, a 500)."""
    fake_upstream.configure(tokens=1)
    requests = {
        "stream": lambda session_id: api.post("/v1/chat/stream", json=body(session_id=session_id),
                                              headers=alice.headers),
        "switch": lambda session_id: api.post("/v1/chat/switch-model", headers=alice.headers,
                                              json={"session_id": session_id, "model": "gpt-3.5-turbo"}),
    }
    for name, request in requests.items():
        session_id = int(stream(api, alice, body())[0].headers["X-Session-Id"])
        answer = sent_while_deleting(Chat.__table__, session_id, lambda: request(session_id))
        assert (name, answer.status_code, answer.json()) == (name, 404, {"detail": "Chat session not found"})


def test_settings_racing_the_sessions_archiving_are_refused(api, alice, fake_upstream):
    """A model switch, or a stream naming settings, that read the session while its archiving was
    committing: 400 as for one sent after it, and the session keeps its settings (they were stored
    before the refusal)."""
    fake_upstream.configure(tokens=1)
    requests = {
        "stream": lambda session_id: api.post("/v1/chat/stream", headers=alice.headers, json=body(
            "late", session_id=session_id, model="gpt-3.5-turbo", temperature=0.1, max_tokens=5)),
        "switch": lambda session_id: api.post("/v1/chat/switch-model", headers=alice.headers,
                                              json={"session_id": session_id, "model": "gpt-3.5-turbo"}),
    }
    for name, request in requests.items():
        session_id = int(stream(api, alice, body())[0].headers["X-Session-Id"])
        before = stored_session(api, alice, session_id)
        archiving = Chat.__table__.update().where(Chat.__table__.c.id == session_id).values(status="ARCHIVED")
        answer = sent_while_writing(archiving, lambda: request(session_id))
        assert (name, answer.status_code, answer.json()) == (name, 400, {"detail": ARCHIVED})
        assert api.patch(f"/api/v1/chats/{session_id}/status", json={"status": "ACTIVE"},
                         headers=alice.headers).status_code == 200
        assert (name, stored_session(api, alice, session_id)) == (name, before)


def test_session_is_a_chat_on_the_uuid_surface(api, alice, fake_upstream):
    fake_upstream.configure(tokens=1)
    stream(api, alice, body("shared across surfaces"))
    titles = [c["title"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()]
    assert "shared across surfaces" in titles


def test_deleting_the_session_mid_reply_ends_its_stream_and_stops_the_reply(api, alice, fake_upstream, monkeypatch):
    # The deletion's event ends the stream: not the next keep-alive (after the client's 10 s read timeout).
    monkeypatch.setattr(runtime.current().settings, "sse_keepalive_s", 60)
    fake_upstream.configure(tokens=200, delay_ms=50)
    seen = []
    with connect_sse(api, "POST", "/v1/chat/stream", json=body(), headers=alice.headers) as sse:
        session_id = sse.response.headers["X-Session-Id"]
        for event in sse.iter_sse():
            seen.append(event.data)
            if len(seen) == 2:
                reply_uuid = event.id.split(":")[1]
                assert api.delete(f"/v1/chat/sessions/{session_id}", headers=alice.headers).status_code == 200
    assert seen[-1] == "[DONE]" and len(seen) < 100
    assert runtime.current().redis.exists(events.stop_key(reply_uuid))


def test_a_reconnect_after_done_gets_done_again(api, alice, fake_upstream):
    fake_upstream.configure(tokens=3)
    _, received = stream(api, alice, body())
    done = received[-1]
    assert done.data == "[DONE]" and done.id
    response, rest = stream(api, alice, body(), headers={"Last-Event-ID": done.id})
    assert response.status_code == 200 and [e.data for e in rest] == ["[DONE]"]


def test_a_resume_from_an_event_the_capped_stream_no_longer_holds_says_events_were_lost(api, alice, fake_upstream):
    """The chat's stream keeps its newest REPLY_STREAM_MAXLEN events: a resume from an older one gets
    `event: error` (`events_lost`) first, then what is left of the reply, so the client reloads it."""
    fake_upstream.configure(tokens=6)
    response, first = stream(api, alice, body())
    session_id = int(response.headers["X-Session-Id"])

    def trim() -> None:
        runtime.current().redis.xtrim(events.chat_stream_key(session_id), maxlen=2, approximate=False)

    trim()  # the reply's last chunk and its end are left
    _, rest = stream(api, alice, body(), headers={"Last-Event-ID": first[0].id})
    assert rest[0].event == "error" and json.loads(rest[0].data)["error_code"] == "events_lost"
    assert [e.data for e in rest[-2:]] == ["t5 ", "[DONE]"]

    stream(api, alice, body("And another", session_id=session_id))
    trim()  # none of the first reply's events are left
    _, rest = stream(api, alice, body(), headers={"Last-Event-ID": first[0].id})
    assert [(e.event, json.loads(e.data)["error_code"] if e.event == "error" else e.data) for e in rest] == [
        ("error", "events_lost"), ("message", "[DONE]")]


def ended_stream(api, account, fake_upstream, monkeypatch, end_session) -> list:
    """The events of a slow reply's stream, `end_session()` called at the second, checking it got no
    [DONE] and stopped well before the reply's end."""
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    fake_upstream.configure(tokens=60, delay_ms=50)
    seen = []
    with connect_sse(api, "POST", "/v1/chat/stream", json=body(), headers=account.headers) as sse:
        for event in sse.iter_sse():
            seen.append(event)
            if len(seen) == 2:
                end_session()
    assert "[DONE]" not in [e.data for e in seen] and len(seen) < 30
    return seen


def test_logging_out_ends_the_streams_of_that_token(api, alice, fake_upstream, monkeypatch):
    """As its WebSockets close 4401, a stream opened with a token revoked by POST /auth/logout ends
    within WS_TOKEN_CHECK_S with an `event: error` (`session_ended`) and no [DONE]; the reply goes on."""
    def log_out():
        assert api.post("/api/v1/auth/logout", headers=alice.headers).status_code == 200

    seen = ended_stream(api, alice, fake_upstream, monkeypatch, log_out)
    assert seen[-1].event == "error" and json.loads(seen[-1].data)["error_code"] == "session_ended"
    resumed = api.post("/v1/chat/stream", json=body(), headers={**alice.headers, "Last-Event-ID": seen[1].id})
    assert resumed.status_code == 401 and resumed.json() == {"detail": "Token has been revoked"}


def test_deactivating_a_user_ends_their_streams(api, alice, make_user, fake_upstream, monkeypatch):
    """As a logout does, an admin deactivating the user ends their streams, with `account_deactivated`."""
    admin = promote(make_user("admin"))
    seen = ended_stream(api, alice, fake_upstream, monkeypatch, lambda: set_active(api, admin, alice, False))
    assert seen[-1].event == "error" and json.loads(seen[-1].data) == {
        "error": "Account deactivated: the session ended", "error_code": "account_deactivated"}


ARCHIVED = "Chat session is archived: unarchive it to continue it"


def test_an_archived_session_takes_nothing_new_until_unarchived(api, alice, fake_upstream):
    """Archived on 002 or 003, a session leaves the history (as archived conversations leave 002's
    list) and is refused new messages, settings and files with a 400 saying why, not a 404 as if
    it were gone; it is still deleted like any session."""
    fake_upstream.configure(tokens=1)
    session_id = int(stream(api, alice, body("Soon archived"))[0].headers["X-Session-Id"])
    before = stored_session(api, alice, session_id)
    status_url = f"/api/v1/chats/{session_id}/status"
    assert api.patch(status_url, json={"status": "ARCHIVED"}, headers=alice.headers).status_code == 200
    refused = {
        "stream": api.post("/v1/chat/stream", json=body("more", session_id=session_id), headers=alice.headers),
        "switch": api.post("/v1/chat/switch-model", json={"session_id": session_id, "model": "gpt-4"},
                           headers=alice.headers),
        "upload": api.post(f"/api/chat/sessions/{session_id}/upload", headers=alice.headers,
                           files={"file": ("a.pdf", text_pdf(["Archived."]), "application/pdf")}),
    }
    for name, answer in refused.items():
        assert (name, answer.status_code, answer.json()) == (name, 400, {"detail": ARCHIVED})
    assert api.get("/v1/chat/history", headers=alice.headers).json()["total"] == 0
    assert api.patch(status_url, json={"status": "ACTIVE"}, headers=alice.headers).status_code == 200
    assert stored_session(api, alice, session_id) == before
    assert api.get(f"/api/chat/sessions/{session_id}/files", headers=alice.headers).json()["files"] == []
    assert api.patch(status_url, json={"status": "ARCHIVED"}, headers=alice.headers).status_code == 200
    assert api.delete(f"/v1/chat/sessions/{session_id}", headers=alice.headers).status_code == 200
    assert api.get(f"/api/v1/chats/{session_id}", headers=alice.headers).status_code == 404
