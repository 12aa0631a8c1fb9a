"""The reply pipeline end to end: REST → RQ worker → fake upstream → Redis → WebSocket."""
from __future__ import annotations

import socket
import time

from sqlalchemy import select

from models import Chat
from tests.admin.accounts import promote, set_active
from tests.conftest import wait_for
from web.realtime import frame_budget, going_away
from workers import runtime
from workers.events import chat_stream_key


def send(api, account, chat_id, content="Hello there"):
    response = api.post(f"/api/v1/chat/chats/{chat_id}/messages", json={"content": content}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def stored_reply(api, account, chat_id):
    history = api.get(f"/api/v1/chat/chats/{chat_id}", headers=account.headers).json()
    return [m for m in history["messages"] if m["message_type"] == "AI"][-1]


def test_welcome_then_streamed_reply(api, alice, make_chat, connect, fake_upstream):
    fake_upstream.configure(tokens=5)
    chat = make_chat(alice, system_prompt="Be brief.", ai_persona="pirate")
    ws = connect(chat["id"], alice["access_token"])
    welcome = ws.next()
    assert welcome["type"] == "welcome"
    assert welcome["chat_id"] == chat["id"] and welcome["user_id"] == alice["id"]
    assert welcome["username"] == alice["username"] and welcome["server_time"]

    sent = send(api, alice, chat["id"])
    events = ws.until("ai_response_complete")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "new_message" and events[0]["message"]["id"] == sent["id"]
    assert kinds[1] == "ai_response_start"
    start = events[1]["message"]
    assert start["status"] == "PROCESSING" and start["is_streaming"] is True and start["message_type"] == "AI"
    chunks = [e for e in events if e["type"] == "ai_response_chunk"]
    assert "".join(c["chunk"] for c in chunks) == "t0 t1 t2 t3 t4 "
    assert chunks[-1]["full_content"] == "t0 t1 t2 t3 t4 "
    done = events[-1]["message"]
    assert done["status"] == "DELIVERED" and done["is_streaming"] is False
    assert done["content"] == "t0 t1 t2 t3 t4 " and done["tokens_used"] > 0
    assert done["processing_time_ms"] is not None
    assert all(e.get("event_id") for e in events)

    body = fake_upstream.completions[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system" and "Be brief." in body["messages"][0]["content"]
    assert "pirate" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": "Hello there"}
    assert body["temperature"] == 0.7 and body["max_tokens"] == 2048

    stored = stored_reply(api, alice, chat["id"])
    assert stored["content"] == "t0 t1 t2 t3 t4 " and stored["status"] == "DELIVERED"
    assert stored["tokens_used"] == done["tokens_used"]


def test_reply_is_stored_with_no_client_connected(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=3)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    reply = wait_for(lambda: (r := stored_reply(api, alice, chat["id"]))["status"] != "PROCESSING" and r)
    assert reply["status"] == "DELIVERED" and reply["content"] == "t0 t1 t2 "


def test_history_goes_upstream_in_order(api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=2)
    chat = make_chat(alice)
    send(api, alice, chat["id"], "first")
    wait_for(lambda: stored_reply(api, alice, chat["id"])["status"] == "DELIVERED")
    send(api, alice, chat["id"], "second")
    wait_for(lambda: stored_reply(api, alice, chat["id"])["status"] == "DELIVERED"
             and len(fake_upstream.completions) == 2)
    messages = fake_upstream.completions[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "first" and messages[1]["content"] == "t0 t1 "


def test_reconnect_with_last_event_id_gets_the_rest_once(api, alice, make_chat, connect, fake_upstream):
    fake_upstream.configure(tokens=30, delay_ms=20)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()  # welcome
    send(api, alice, chat["id"])
    seen = ws.until("ai_response_chunk")
    seen += [ws.next(), ws.next()]
    last = seen[-1]
    ws.close()
    time.sleep(0.1)
    again = connect(chat["id"], alice["access_token"], query=f"last_event_id={last['event_id']}")
    assert again.next()["type"] == "welcome"
    rest = again.until("ai_response_complete")
    ids = [e["event_id"] for e in seen + rest]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    chunks = [e for e in seen + rest if e["type"] == "ai_response_chunk"]
    assert "".join(c["chunk"] for c in chunks) == "".join(f"t{i} " for i in range(30))
    assert rest[-1]["message"]["content"] == "".join(f"t{i} " for i in range(30))
    resumed_chunks = [e for e in rest if e["type"] == "ai_response_chunk"]
    if resumed_chunks:  # full_content is rebuilt from the reply's start, not from the resume point
        assert resumed_chunks[-1]["full_content"] == "".join(c["chunk"] for c in chunks[: len(chunks)])


def test_tokens_that_come_together_share_a_chunk(api, alice, make_chat, connect, fake_upstream, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "reply_chunk_window_ms", 5000)
    fake_upstream.configure(tokens=6)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    chunks = [e for e in ws.until("ai_response_complete") if e["type"] == "ai_response_chunk"]
    assert [c["chunk"] for c in chunks] == ["t0 ", "t1 t2 t3 t4 t5 "]  # the first at once, the rest at the end
    assert chunks[-1]["full_content"] == "t0 t1 t2 t3 t4 t5 " and "tokens" not in chunks[-1]
    assert stored_reply(api, alice, chat["id"])["content"] == "t0 t1 t2 t3 t4 t5 "


def watched_reply(api, alice, make_chat, connect, fake_upstream):
    """A new chat with alice's socket open on it, once a 4-token reply has streamed there:
    (the chat, the socket, the events it got from the message to `ai_response_complete`)."""
    fake_upstream.configure(tokens=4)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    send(api, alice, chat["id"])
    return chat, ws, ws.until("ai_response_complete")


def test_resume_message_on_open_socket(api, alice, make_chat, connect, fake_upstream):
    _, ws, first = watched_reply(api, alice, make_chat, connect, fake_upstream)
    ws.send({"type": "resume", "last_event_id": first[1]["event_id"]})  # after ai_response_start
    replay = ws.until("ai_response_complete")
    # The replayed chunks go as one (each chunk carries the reply so far: one per token made a
    # replay's bytes grow with the square of the reply's length), ending where the last one did.
    text = "".join(e["chunk"] for e in first[2:-1])
    assert [(e["type"], e["event_id"]) for e in replay] == [(e["type"], e["event_id"]) for e in first[-2:]]
    assert replay[0]["chunk"] == replay[0]["full_content"] == text == "t0 t1 t2 t3 "


def test_late_connect_gets_reply_in_progress(api, alice, make_chat, connect, fake_upstream):
    fake_upstream.configure(tokens=20, delay_ms=30)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    time.sleep(0.25)  # the reply is streaming; this client was not there for its start
    ws = connect(chat["id"], alice["access_token"])
    assert ws.next()["type"] == "welcome"
    events = ws.until("ai_response_complete")
    assert events[0]["type"] == "ai_response_start"
    chunks = [e["chunk"] for e in events if e["type"] == "ai_response_chunk"]
    assert "".join(chunks) == "".join(f"t{i} " for i in range(20))


def test_ping_and_heartbeat_get_pong(alice, make_chat, connect):
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    for kind in ("ping", "heartbeat"):
        ws.send({"type": kind, "timestamp": "2024-01-01T12:00:00Z"})
        pong = ws.next()
        assert pong["type"] == "pong" and pong["timestamp"] == "2024-01-01T12:00:00Z" and pong["server_time"]


def test_a_socket_without_client_frames_closes_idle_and_any_frame_keeps_it_open(alice, make_chat, connect,
                                                                               settings, monkeypatch):
    monkeypatch.setattr(settings, "ws_idle_timeout_s", 1.5)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    for frame in ({"type": "heartbeat"}, {"type": "typing"}):  # each one restarts the idle time
        time.sleep(1.0)
        ws.send(frame)
        ws.next()
    started = time.monotonic()
    opcode, data = ws.ws.recv_data()
    assert opcode == 8 and int.from_bytes(data[:2], "big") == 4408 and data[2:] == b"Idle timeout"
    assert 1.0 < time.monotonic() - started < 3.0


def test_typing_indicator_reaches_other_members(api, alice, make_user, make_chat, connect):
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP")
    added = api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]},
                     headers=alice.headers)
    assert added.status_code == 201
    ws = connect(chat["id"], bob["access_token"])
    ws.next()
    answer = api.post(f"/api/v1/chat/chats/{chat['id']}/typing", headers=alice.headers)
    assert answer.status_code == 200 and answer.json()["status"] == "sent" and answer.json()["timestamp"]
    event = ws.next()
    assert event["type"] == "typing_indicator"
    assert event["user_id"] == alice["id"] and event["username"] == alice["username"]


def test_a_member_who_cannot_send_cannot_announce_typing(api, alice, make_user, make_chat, connect):
    bob = make_user("bob")
    channel = make_chat(alice, chat_type="CHANNEL")  # members read unless allowed to send
    api.post(f"/api/v1/chat/chats/{channel['id']}/participants", json={"user_id": bob["id"]}, headers=alice.headers)
    mine, his = connect(channel["id"], alice["access_token"]), connect(channel["id"], bob["access_token"])
    mine.next(), his.next()
    his.send({"type": "typing"})
    assert his.next() | {"server_time": ""} == {"type": "error", "error": "Cannot send messages to this chat",
                                               "error_code": "typing_failed", "server_time": ""}
    mine.send({"type": "ping"})
    assert mine.next()["type"] == "pong"  # no typing_indicator came before it


def test_typing_indicators_are_at_most_one_a_second_per_user(api, alice, make_user, make_chat, connect):
    """A client typing per keystroke does not flood the members (nor push replies out of the capped stream)."""
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP")
    api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]}, headers=alice.headers)
    his, mine = connect(chat["id"], bob["access_token"]), connect(chat["id"], alice["access_token"])
    his.next(), mine.next()
    for _ in range(5):
        assert api.post(f"/api/v1/chat/chats/{chat['id']}/typing", headers=alice.headers).status_code == 200
        mine.send({"type": "typing"})
    his.send({"type": "ping"})
    assert [e["type"] for e in his.until("pong")] == ["typing_indicator", "pong"]
    time.sleep(1.1)
    mine.send({"type": "typing"})
    assert his.next()["type"] == "typing_indicator"


def test_a_member_who_cannot_send_cannot_stop_replies(api, alice, make_user, make_chat, connect, fake_upstream):
    fake_upstream.configure(tokens=30, delay_ms=30)
    bob = make_user("bob")
    channel = make_chat(alice, chat_type="CHANNEL")
    api.post(f"/api/v1/chat/chats/{channel['id']}/participants", json={"user_id": bob["id"]}, headers=alice.headers)
    his = connect(channel["id"], bob["access_token"])
    his.next()
    send(api, alice, channel["id"])
    reply_id = his.until("ai_response_start")[-1]["message"]["id"]
    stop = api.post(f"/api/v1/chat/chats/{channel['id']}/messages/{reply_id}/stop", headers=bob.headers)
    assert stop.status_code == 403
    assert stop.json()["detail"] == "Cannot stop replies in this chat: you cannot send messages to it"
    his.send({"type": "stop", "message_id": reply_id})
    assert his.until("error")[-1]["error"] == stop.json()["detail"]
    assert his.until("ai_response_complete")[-1]["message"]["status"] == "DELIVERED"


def test_group_members_see_each_others_messages(api, alice, make_user, make_chat, connect, fake_upstream):
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP")
    api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]}, headers=alice.headers)
    ws = connect(chat["id"], bob["access_token"])
    ws.next()
    send(api, alice, chat["id"], "hi bob")
    events = ws.until("ai_response_complete")
    assert events[0]["type"] == "new_message" and events[0]["message"]["content"] == "hi bob"
    assert events[0]["message"]["sender_id"] == alice["id"]


def test_an_exchange_not_kept_reaches_only_the_askers_sockets(api, alice, make_user, make_chat, connect,
                                                              fake_upstream):
    """save_to_history: false is the asker's own exchange: other members never see it, live or replayed."""
    fake_upstream.configure(reply="for your eyes only")
    bob = make_user("bob")
    chat = make_chat(alice, chat_type="GROUP")
    api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]}, headers=alice.headers)
    mine, his = connect(chat["id"], alice["access_token"]), connect(chat["id"], bob["access_token"])
    mine.next(), his.next()
    asked = api.post(f"/api/v1/chat/chats/{chat['id']}/ai-message",
                     json={"message": "a private question", "stream": True, "save_to_history": False},
                     headers=alice.headers)
    assert asked.status_code == 200, asked.text
    seen = mine.until("ai_response_complete")
    assert seen[0]["type"] == "new_message" and seen[0]["message"]["content"] == "a private question"
    assert seen[-1]["message"]["content"] == "for your eyes only" and all("only_for" not in e for e in seen)
    send(api, alice, chat["id"], "a kept message")
    first = his.next()
    assert first["type"] == "new_message" and first["message"]["content"] == "a kept message"
    replayed = connect(chat["id"], bob["access_token"], query="last_event_id=0-0")
    replayed.next()  # welcome
    assert [e["type"] for e in replayed.until("new_message")] == ["participant_added", "new_message"]


def test_socket_rejects_bad_token_and_outsiders(alice, make_user, make_chat, connect):
    chat = make_chat(alice)
    for token, code in (("not-a-token", 4401), (None, 4401), (make_user("eve")["access_token"], 4403)):
        ws = connect(chat["id"], token)
        ws.ws.settimeout(5)
        opcode, data = ws.ws.recv_data()
        assert opcode == 8  # close frame before any event
        assert int.from_bytes(data[:2], "big") == code and data[2:]
    ws = connect("00000000-0000-0000-0000-000000000000", alice["access_token"])
    opcode, data = ws.ws.recv_data()
    assert opcode == 8 and int.from_bytes(data[:2], "big") == 4404
    for cursor in ("99999999999999999999999-0", "0-18446744073709551616", "+1-0", "1-"):
        ws = connect(chat["id"], alice["access_token"], query=f"last_event_id={cursor}")
        opcode, data = ws.ws.recv_data()
        assert opcode == 8 and int.from_bytes(data[:2], "big") == 4400, cursor  # not a Redis error


def test_socket_accepts_authorization_header(alice, make_chat, connect):
    chat = make_chat(alice)
    ws = connect(chat["id"], header=[f"Authorization: Bearer {alice['access_token']}"])
    assert ws.next()["type"] == "welcome"


def test_answers_to_client_frames(alice, make_chat, connect):
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    ws.ws.send("not json")
    assert ws.next()["error_code"] == "invalid_message"
    for frame, code in (({"type": "dance"}, "unknown_type"),
                        ({"type": "resume", "last_event_id": "x-y"}, "invalid_cursor"),
                        ({"type": "resume", "last_event_id": "99999999999999999999999"}, "invalid_cursor"),
                        ({"type": "resume", "last_event_id": "18446744073709551615-18446744073709551616"},
                         "invalid_cursor"),
                        ({"type": "stop", "message_id": "unknown"}, "stop_failed")):
        ws.send(frame)
        error = ws.next()
        assert error["type"] == "error" and error["error_code"] == code and error["error"]
    ws.send({"type": "stop"})
    assert ws.next()["error"] == "stop needs the message_id of the reply to stop"
    ws.send({"type": "resume"})  # it replayed the whole stream, as 0 does
    assert ws.next()["error"] == "resume needs a last_event_id (0 replays everything the stream holds)"
    ws.send({"type": "ping", "timestamp": 12})
    pong = ws.next()
    assert pong["type"] == "pong" and isinstance(pong["timestamp"], str)  # only a string is echoed


def test_events_of_the_other_surfaces_reach_this_socket(api, alice, make_user, connect, fake_upstream):
    from tests.api.rag_helpers import send as send_rag
    from tests.api.test_chats_v1 import chat_uuid, create_chat, post

    chat = create_chat(api, alice, chat_type="GROUP")
    ws = connect(chat_uuid(api, alice, chat), alice["access_token"])
    ws.next()
    bob = make_user("bob")
    api.post(f"/api/v1/chat/chats/{chat_uuid(api, alice, chat)}/participants", json={"user_id": bob["id"]},
             headers=alice.headers)
    message = post(api, alice, chat["id"], "from the chats API")
    api.patch(f"/api/v1/messages/{message['id']}/status", json={"status": "READ"}, headers=alice.headers)
    api.post(f"/api/v1/messages/{message['id']}/reactions", json={"reaction": "👍"}, headers=alice.headers)
    api.delete(f"/api/v1/messages/{message['id']}/reactions/👍", headers=alice.headers)
    kinds = [ws.next()["type"] for _ in range(5)]
    assert kinds == ["participant_added", "new_message", "message_status_changed", "reaction_added",
                     "reaction_removed"]

    fake_upstream.configure(tokens=2)
    session = send_rag(api, alice, "first question")[0].headers["X-Session-Id"]
    rag = connect(session, alice["access_token"])
    rag.next()
    send_rag(api, alice, "second question", session_id=session)
    kinds = [e["type"] for e in rag.until("ai_response_complete")]
    assert kinds[:2] == ["new_message", "rag_status"] and "ai_response_start" in kinds


def test_frames_unlike_their_declared_event_are_refused(response_checker):
    path, where = "/api/v1/chat/chats/any/ws", "WS /api/v1/chat/chats/{chat_id}/ws"
    pong = {"type": "pong", "timestamp": "2024-01-01T12:00:00Z", "server_time": "2024-01-01T12:00:01Z"}
    assert response_checker.frame_problems(path, pong) == []
    assert response_checker.frame_problems(path, {**pong, "extra": 1}) == [
        f"{where} pong: frame: Additional properties are not allowed ('extra' was unexpected)"]
    assert response_checker.frame_problems(path, {"type": "dance"})[0].startswith(
        f"{where}: event type 'dance' not described")


def test_a_cursor_past_the_streams_last_event_reads_as_that_event(api, alice, make_chat, connect, fake_upstream):
    """A made-up cursor, or one kept across a Redis reset, must not silence the socket: it gets what comes next."""
    fake_upstream.configure(tokens=1)
    chat = make_chat(alice)
    future = "99999999999999-0"
    ws = connect(chat["id"], alice["access_token"], query=f"last_event_id={future}")
    assert ws.next()["last_event_id"] == "0-0"  # the chat's stream has no event yet
    send(api, alice, chat["id"], "one")
    first = ws.until("ai_response_complete")
    assert first[0]["type"] == "new_message" and first[0]["message"]["content"] == "one"
    ws.send({"type": "resume", "last_event_id": future})
    send(api, alice, chat["id"], "two")
    second = ws.until("ai_response_complete")
    assert second[0]["type"] == "new_message" and second[0]["message"]["content"] == "two"


def test_logging_out_closes_the_sockets_opened_with_that_token(api, alice, make_chat, connect, monkeypatch):
    """A revoked token is refused from then on: a socket it opened stops relaying the chat and closes 4401."""
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    assert api.post("/api/v1/auth/logout", headers=alice.headers).status_code == 200
    ws.ws.settimeout(5)
    opcode, data = ws.ws.recv_data()
    assert opcode == 8 and int.from_bytes(data[:2], "big") == 4401 and data[2:] == b"Token has been revoked"


def test_deactivating_a_user_closes_their_sockets(api, alice, make_user, make_chat, connect, monkeypatch):
    """As a logout closes a token's sockets, an admin deactivating a user closes every socket of theirs
    4401 within WS_TOKEN_CHECK_S; the other members' stay, and once reactivated their new ones do too."""
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    admin, bob = promote(make_user("admin")), make_user("bob")
    chat = make_chat(alice, chat_type="GROUP")
    assert api.post(f"/api/v1/chat/chats/{chat['id']}/participants", json={"user_id": bob["id"]},
                    headers=alice.headers).status_code == 201
    alice_ws, bob_ws = connect(chat["id"], alice["access_token"]), connect(chat["id"], bob["access_token"])
    alice_ws.next(), bob_ws.next()
    set_active(api, admin, bob, False)
    bob_ws.ws.settimeout(5)
    opcode, data = bob_ws.ws.recv_data()
    assert opcode == 8 and int.from_bytes(data[:2], "big") == 4401 and data[2:] == b"Account deactivated"

    set_active(api, admin, bob, True)
    again = connect(chat["id"], bob["access_token"])
    assert again.next()["type"] == "welcome"
    time.sleep(0.6)  # past a few checks
    for ws in (alice_ws, again):
        ws.send({"type": "ping", "timestamp": "still here"})
        assert ws.next()["timestamp"] == "still here"


def test_a_session_deleted_for_good_closes_its_open_sockets(api, alice, connect, fake_upstream):
    """001's DELETE removes the chat and its event stream; a socket open on it closes 4404 instead of
    staying open on nothing."""
    fake_upstream.configure(tokens=1)
    answer = api.post("/v1/chat/stream", json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}],
                                               "stream": False}, headers=alice.headers)
    session_id = answer.json()["session_id"]
    session_uuid = next(c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()
                        if c["title"] == "hi")
    ws = connect(session_uuid, alice["access_token"])
    ws.next()
    assert api.delete(f"/v1/chat/sessions/{session_id}", headers=alice.headers).status_code == 200
    ws.ws.settimeout(5)
    opcode, data = ws.ws.recv_data()
    assert opcode == 8 and int.from_bytes(data[:2], "big") == 4404 and data[2:] == b"Chat not found"


def chat_key(chat_uuid: str) -> int:
    with runtime.session() as db:
        return db.scalar(select(Chat.id).where(Chat.uuid == chat_uuid))


def test_a_resume_from_a_cursor_the_capped_stream_no_longer_holds_says_events_were_lost(
        api, alice, make_chat, connect, fake_upstream, monkeypatch):
    """The stream keeps its newest REPLY_STREAM_MAXLEN events: a cursor older than the oldest kept one
    gets an `events_lost` error before the rest, so the client reloads the history over REST."""
    monkeypatch.setattr(runtime.current().settings, "ws_client_frames_per_s", 100)  # resumes count as 10
    chat, _, seen = watched_reply(api, alice, make_chat, connect, fake_upstream)
    runtime.current().redis.xtrim(chat_stream_key(chat_key(chat["id"])), maxlen=2, approximate=False)
    kept = [e["event_id"] for e in seen[-2:]]

    again = connect(chat["id"], alice["access_token"], query=f"last_event_id={seen[0]['event_id']}")
    assert again.next()["type"] == "welcome"
    lost = again.next()
    assert lost["type"] == "error" and lost["error_code"] == "events_lost"
    assert seen[0]["event_id"] in lost["error"] and kept[0] in lost["error"]
    assert [e["event_id"] for e in again.until("ai_response_complete")] == kept

    again.send({"type": "resume", "last_event_id": seen[0]["event_id"]})
    assert again.next()["error_code"] == "events_lost"
    assert [e["event_id"] for e in again.until("ai_response_complete")] == kept
    again.send({"type": "resume", "last_event_id": "0"})  # everything the stream holds: nothing was asked for
    assert [e["event_id"] for e in again.until("ai_response_complete")] == kept
    again.send({"type": "resume", "last_event_id": kept[0]})  # the oldest event kept: nothing lost
    assert [e["event_id"] for e in again.until("ai_response_complete")] == kept[1:]


def test_a_resume_after_the_chats_stream_expired_says_events_may_be_lost(api, alice, make_chat, connect,
                                                                        fake_upstream):
    """A chat's stream expires an hour after its last event: a client resuming after that cannot be
    told what followed its cursor, so it is told to reload the history rather than nothing."""
    chat, _, seen = watched_reply(api, alice, make_chat, connect, fake_upstream)
    runtime.current().redis.delete(chat_stream_key(chat_key(chat["id"])))  # as the stream's EXPIRE does

    again = connect(chat["id"], alice["access_token"], query=f"last_event_id={seen[0]['event_id']}")
    assert again.next()["type"] == "welcome"
    lost = again.next()
    assert lost["type"] == "error" and lost["error_code"] == "events_lost"
    assert lost["error"] == (f"Events after {seen[0]['event_id']} are no longer kept (the chat's event stream "
                             "has expired): some may be lost; reload the history")
    again.send({"type": "resume", "last_event_id": "0"})  # everything the stream holds: nothing, nothing lost
    again.send({"type": "ping"})
    assert again.next()["type"] == "pong"


def close_frame(ws) -> tuple[int, bytes]:
    """The code and reason of the close frame the server sends next, skipping the events before it."""
    ws.ws.settimeout(5)
    while True:
        opcode, data = ws.ws.recv_data()
        if opcode == 8:
            return int.from_bytes(data[:2], "big"), data[2:]


def stalled_replay(api, alice, make_chat, connect, fake_upstream):
    """A socket whose loop is busy writing a long replay (one 2 MB reply) to a client that reads
    nothing (a 4 KB receive buffer), after its `welcome`."""
    fake_upstream.configure(reply="x" * 2_000_000)
    chat = make_chat(alice)
    send(api, alice, chat["id"])
    wait_for(lambda: stored_reply(api, alice, chat["id"])["status"] == "DELIVERED")
    ws = connect(chat["id"], alice["access_token"], sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    ws.next()
    ws.send({"type": "resume", "last_event_id": "0"})
    return ws


def test_a_client_within_the_rate_whose_frames_wait_is_told_of_those_dropped_not_closed(
        api, alice, make_chat, connect, fake_upstream, monkeypatch):
    """Frames sent within the rate while the socket's loop is busy sending (here a long replay to a
    client not reading) wait up to three budgets' worth; past that they are dropped and the client
    is told with one `frames_dropped` error. The socket was closed 4429 as if flooding; and frames
    that had waited were counted when served, so a backlog looked like a burst."""
    monkeypatch.setattr(runtime.current().settings, "ws_client_frames_per_s", 10)
    ws = stalled_replay(api, alice, make_chat, connect, fake_upstream)
    time.sleep(1.1)  # the resume took its second's budget
    for n in range(36):  # 8 a second, under the 10 a second budget
        ws.send({"type": "ping", "timestamp": str(n)})
        time.sleep(0.125)
    seen = ws.until("pong", timeout=30)
    dropped = [e for e in seen if e["type"] == "error"]
    assert [e["error_code"] for e in dropped] == ["frames_dropped"] and dropped[0]["error"].startswith("6 frame(s)")
    pongs = [seen[-1]] + [ws.next() for _ in range(29)]
    assert [p["timestamp"] for p in pongs] == [str(n) for n in range(30)]
    ws.send({"type": "ping", "timestamp": "still open"})
    assert ws.until("pong")[-1]["timestamp"] == "still open"


def test_a_frame_larger_than_the_limit_closes_the_socket_1009(alice, make_chat, connect):
    """A client frame was read whole into memory, however large (and a compressed one inflated
    whole): a client could make the server hold gigabytes. Past MAX_FRAME_BYTES the socket closes
    1009 (message too big) as the frame comes in; frames up to it are served."""
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    ws.send({"type": "ping", "timestamp": "t" * (frame_budget.MAX_FRAME_BYTES - 100)})
    assert ws.next()["type"] == "pong"
    ws.send({"type": "ping", "timestamp": "t" * frame_budget.MAX_FRAME_BYTES})
    assert close_frame(ws) == (1009, b"Message is too big")


def test_a_refused_resume_costs_one_frame(alice, make_chat, connect, monkeypatch):
    """Only a resume that re-reads the stream counts as 10: one answered `invalid_cursor` costs 1,
    like any other frame, so the frames after it are still served."""
    monkeypatch.setattr(runtime.current().settings, "ws_client_frames_per_s", 10)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    ws.send({"type": "resume", "last_event_id": "x-y"})
    ws.send({"type": "resume"})
    for n in range(8):
        ws.send({"type": "ping", "timestamp": str(n)})
    answers = [ws.next() for _ in range(10)]
    assert [a.get("error_code") for a in answers[:2]] == ["invalid_cursor", "invalid_cursor"]
    assert [a.get("timestamp") for a in answers[2:]] == [str(n) for n in range(8)]


def test_client_frames_are_rate_limited_per_socket(api, alice, make_chat, connect, monkeypatch):
    """WS_CLIENT_FRAMES_PER_S a second (a resume counts as 10): the first frame past it gets a
    `rate_limited` error, later ones are dropped, and three times the limit closes the socket 4429."""
    monkeypatch.setattr(runtime.current().settings, "ws_client_frames_per_s", 10)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    for n in range(12):
        ws.send({"type": "ping", "timestamp": str(n)})
    answers = [ws.next() for _ in range(11)]
    assert [a.get("timestamp") for a in answers[:10]] == [str(n) for n in range(10)]
    assert answers[10]["type"] == "error" and answers[10]["error_code"] == "rate_limited"
    assert "10 a second" in answers[10]["error"]
    time.sleep(1.1)  # a new second: frames are answered again
    ws.send({"type": "resume", "last_event_id": "0"})
    ws.send({"type": "ping"})
    assert ws.until("error")[-1]["error_code"] == "rate_limited"  # the resume took the second's budget
    for _ in range(40):
        ws.send({"type": "typing"})
    assert close_frame(ws) == (4429, b"Too many frames")


def test_a_client_sending_faster_than_its_frames_are_served_is_closed_4429(
        api, alice, make_chat, connect, fake_upstream, monkeypatch):
    """At most three budgets' worth of client frames wait for the socket's loop: past that the socket
    closes 4429 and the rest are not kept, so frames sent while the loop is busy writing cannot grow
    the server's memory."""
    monkeypatch.setattr(going_away, "_sockets", going_away.OpenSockets())  # to find this socket's inbox
    monkeypatch.setattr(runtime.current().settings, "ws_client_frames_per_s", 10)
    ws = stalled_replay(api, alice, make_chat, connect, fake_upstream)
    (inbox,) = going_away.open_sockets()._inboxes
    for _ in range(500):
        ws.send({"type": "ping"})
    time.sleep(0.5)  # the server's reader takes them in meanwhile
    waiting = [kind for kind, _ in list(inbox.queue) if kind == "client"]  # the hub's items share the inbox
    assert len(waiting) <= 3 * 10  # three budgets' worth
    assert close_frame(ws) == (4429, b"Too many frames")
