"""MAX_CONNECTIONS_PER_USER: a user's open chat WebSockets (000, 003) and event streams (001, 004)
counted together across every process, each holding a lease in Redis while it is open."""
from __future__ import annotations

import socket
import time
from typing import Callable

import pytest
from httpx_sse import connect_sse

from tests.api.rag_helpers import events
from tests.api.test_chats_v1 import create_chat
from tests.conftest import Socket, close_all, socket_opener, wait_for
from web.services.connections import connections_key
from workers import leases, runtime

TWO_OPEN = "Too many open connections (at most 2): close one first"
ONE_OPEN = "Too many open connections (at most 1): close one first"


@pytest.fixture
def connect_v1(server: str) -> Callable[..., Socket]:
    open_socket, opened = socket_opener(server, "/api/v1/chats/{chat_id}/ws")
    yield open_socket
    close_all(opened)


@pytest.fixture
def cap(monkeypatch) -> Callable[[int], None]:
    def set_cap(limit: int) -> None:
        monkeypatch.setattr(runtime.current().settings, "max_connections_per_user", limit)

    return set_cap


def open_leases(account) -> int:
    return runtime.current().redis.zcard(connections_key(account["user_id"]))


def first_frame_closes(ws: Socket) -> tuple[int, str]:
    """The close code and reason of a socket refused before any event."""
    ws.ws.settimeout(5)
    opcode, data = ws.ws.recv_data()
    assert opcode == 8, "expected a close frame before any event"
    return int.from_bytes(data[:2], "big"), data[2:].decode()


def stream_body(content: str = "Tell me a story", **extra) -> dict:
    return {"model": "gpt-4", "messages": [{"role": "user", "content": content}], **extra}


def test_a_socket_past_the_cap_closes_4429_before_any_event_until_one_closes(alice, make_chat, connect,
                                                                              connect_v1, api, cap):
    cap(2)
    chat, v1_chat = make_chat(alice), create_chat(api, alice)
    first = connect(chat["id"], alice["access_token"])
    assert first.next()["type"] == "welcome"
    second = connect_v1(v1_chat["id"], alice["access_token"])
    assert second.next()["type"] == "welcome"
    assert first_frame_closes(connect(chat["id"], alice["access_token"])) == (4429, TWO_OPEN)
    assert first_frame_closes(connect_v1(v1_chat["id"], alice["access_token"])) == (4429, TWO_OPEN)

    second.close()
    wait_for(lambda: open_leases(alice) == 1, what="the closed socket's lease given back")
    assert connect_v1(v1_chat["id"], alice["access_token"]).next()["type"] == "welcome"


def test_a_stream_past_the_cap_is_429_and_stores_nothing(api, alice, make_chat, connect, cap, fake_upstream):
    """A message that would start a stream is refused before it, its session or a reply slot is stored."""
    cap(1)
    fake_upstream.configure(tokens=2)
    held = connect(make_chat(alice)["id"], alice["access_token"])
    assert held.next()["type"] == "welcome"
    refused = [api.post("/v1/chat/stream", json=stream_body("lost?"), headers=alice.headers),
               api.post("/chat/send", json={"message": "lost?"}, headers=alice.headers),
               api.get("/chat/send", params={"message": "lost?", "auth_token": alice["access_token"]})]
    for response in refused:
        assert response.status_code == 429 and response.json() == {"detail": ONE_OPEN}
        assert response.headers["Retry-After"] == "5"
    history = api.get("/v1/chat/history", headers=alice.headers).json()
    assert [session["messages"] for session in history["sessions"]] == [[]]  # only the socket's chat
    assert runtime.current().redis.zcard(leases.replies_key(alice["user_id"])) == 0
    whole = api.post("/v1/chat/stream", json=stream_body(stream=False), headers=alice.headers)
    assert whole.status_code == 200  # a reply waited for is no open stream

    held.close()
    wait_for(lambda: open_leases(alice) == 0, what="the closed socket's lease given back")
    with connect_sse(api, "POST", "/v1/chat/stream", json=stream_body(), headers=alice.headers) as sse:
        assert [event.data for event in sse.iter_sse()][-1] == "[DONE]"
    wait_for(lambda: open_leases(alice) == 0, what="the ended stream's lease given back")


def test_resumed_streams_count_and_streams_a_client_left_give_their_place_back(api, alice, make_chat, connect,
                                                                                cap, fake_upstream):
    cap(2)
    fake_upstream.configure(tokens=60, delay_ms=50)
    chat = make_chat(alice)
    with connect_sse(api, "POST", "/chat/send", json={"message": "hi"}, headers=alice.headers) as sse:
        received = events(api, "POST", sse)  # kept: once collected, its connection closes
        token_id = next(event_id for event_id, payload in received if payload["type"] == "token")
        params = {"message": "ignored", "auth_token": alice["access_token"]}
        with connect_sse(api, "GET", "/chat/send", params=params, headers={"Last-Event-ID": token_id}) as resumed:
            resumed_events = events(api, "GET", resumed)
            assert next(resumed_events)[1]["type"] == "token"
            assert open_leases(alice) == 2
            assert first_frame_closes(connect(chat["id"], alice["access_token"])) == (4429, TWO_OPEN)
    wait_for(lambda: open_leases(alice) == 0, what="the leases of the streams their client left")

    cap(1)
    with connect_sse(api, "POST", "/v1/chat/stream", json=stream_body(), headers=alice.headers) as sse:
        last_id = next(event.id for event in sse.iter_sse() if event.id)
    wait_for(lambda: open_leases(alice) == 0, what="the lease of the stream its client left")
    held = connect(chat["id"], alice["access_token"])
    assert held.next()["type"] == "welcome"
    resume = {**alice.headers, "Last-Event-ID": last_id}
    assert api.post("/v1/chat/stream", json=stream_body(), headers=resume).status_code == 429
    held.close()
    wait_for(lambda: open_leases(alice) == 0, what="the closed socket's lease given back")
    with connect_sse(api, "POST", "/v1/chat/stream", json=stream_body(), headers=resume) as sse:
        assert [event.data for event in sse.iter_sse()][-1] == "[DONE]"


def test_every_way_a_socket_ends_gives_its_lease_back(api, alice, make_chat, connect, monkeypatch):
    chat = make_chat(alice)
    dropped = connect(chat["id"], alice["access_token"])
    assert dropped.next()["type"] == "welcome" and open_leases(alice) == 1
    dropped.ws.sock.shutdown(socket.SHUT_RDWR)  # the client vanishes without a close frame
    dropped.ws.sock.close()
    wait_for(lambda: open_leases(alice) == 0, what="the dropped socket's lease given back")

    monkeypatch.setattr(runtime.current().settings, "ws_idle_timeout_s", 0.5)
    idle = connect(chat["id"], alice["access_token"])
    assert idle.next()["type"] == "welcome"
    assert first_frame_closes(idle)[0] == 4408
    wait_for(lambda: open_leases(alice) == 0, what="the idle socket's lease given back")

    monkeypatch.setattr(runtime.current().settings, "ws_idle_timeout_s", 300.0)
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    revoked = connect(chat["id"], alice["access_token"])
    assert revoked.next()["type"] == "welcome"
    assert api.post("/api/v1/auth/logout", headers=alice.headers).status_code == 200
    assert first_frame_closes(revoked)[0] == 4401
    wait_for(lambda: open_leases(alice) == 0, what="the revoked socket's lease given back")


def test_a_lease_not_renewed_expires_and_open_connections_renew_theirs(api, alice, make_chat, connect, cap,
                                                                        monkeypatch, fake_upstream):
    cap(1)
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    redis, key = runtime.current().redis, connections_key(alice["user_id"])
    redis.zadd(key, {"held by a process that died": time.time() + 60})
    chat = make_chat(alice)
    assert first_frame_closes(connect(chat["id"], alice["access_token"])) == (4429, ONE_OPEN)
    redis.zadd(key, {"held by a process that died": time.time() - 1})  # its minute has passed
    live = connect(chat["id"], alice["access_token"])
    assert live.next()["type"] == "welcome"
    assert redis.zscore(key, "held by a process that died") is None

    def renewed() -> bool:
        (lease,) = redis.zrange(key, 0, -1)
        redis.zadd(key, {lease: time.time() + 1})  # about to expire, unless its socket renews it
        return wait_for(lambda: redis.zscore(key, lease) > time.time() + 30, what="the lease renewed")

    assert renewed()
    live.close()
    wait_for(lambda: open_leases(alice) == 0, what="the closed socket's lease given back")
    fake_upstream.configure(tokens=60, delay_ms=50)
    with connect_sse(api, "POST", "/v1/chat/stream", json=stream_body(), headers=alice.headers) as sse:
        received = sse.iter_sse()  # kept: once collected, its connection closes
        next(received)
        assert renewed()
