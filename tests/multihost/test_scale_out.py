"""Parley across hosts: no process keeps state another needs (network namespaces, run as root).

One database host, two web hosts, two worker hosts on a bridge; the clients are this test.
"""
from __future__ import annotations

import json
import signal
import time
import uuid

import httpx
import pytest
import websocket
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.conftest import REAL_SERVICES
from tests.fake_openai import FakeOpenAI
from tests.conftest import wait_for
from tests.multihost.topology import BRIDGE_IP, Topology, missing_requirements
from workers import queues

REASON = missing_requirements()
pytestmark = [
    pytest.mark.multihost,
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
    # Once per CI run is enough: its first pass (real services) runs as root.
    pytest.mark.skipif(not REAL_SERVICES, reason="runs in the real-services pass only"),
]


@pytest.fixture(scope="module")
def network():
    topology = Topology()
    try:
        topology.build()
        yield topology
    finally:
        topology.destroy()


@pytest.fixture(scope="module")
def upstream(network):
    fake = FakeOpenAI(host=BRIDGE_IP).start()
    network.upstream_url = fake.base_url
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def hosts(network, upstream):
    topology = network
    try:
        topology.start_db()
        topology.start_web("web_a")
        topology.start_web("web_b")
        topology.start_worker("worker_c")  # worker_d joins later, when a test needs it
        topology.wait_web("web_a")
        topology.wait_web("web_b")
        yield topology
    finally:
        for name in list(topology.processes):
            topology.kill(name)


@pytest.fixture
def user(hosts):
    name = f"u{uuid.uuid4().hex[:8]}"
    password = "correct horse battery"
    assert httpx.post(hosts.url("web_b") + "/api/v1/auth/register",
                      json={"email": f"{name}@example.com", "username": name, "password": password}).status_code == 201
    tokens = httpx.post(hosts.url("web_b") + "/api/v1/auth/login", json={"username": name, "password": password}).json()
    return {"token": tokens["access_token"], "headers": {"Authorization": f"Bearer {tokens['access_token']}"}}


def new_chat(hosts, user, host="web_a") -> str:
    return httpx.post(hosts.url(host) + "/api/v1/chat/chats", json={"title": "hosts"}, headers=user["headers"]).json()["id"]


def send(hosts, user, chat, host, content="Tell me a story") -> httpx.Response:
    return httpx.post(f"{hosts.url(host)}/api/v1/chat/chats/{chat}/messages", json={"content": content},
                      headers=user["headers"], timeout=10)


def socket(hosts, user, chat, host, last_event_id: str | None = None) -> websocket.WebSocket:
    query = f"token={user['token']}" + (f"&last_event_id={last_event_id}" if last_event_id else "")
    ws = websocket.create_connection(f"ws://{hosts.ip(host)}:8000/api/v1/chat/chats/{chat}/ws?{query}", timeout=15)
    assert json.loads(ws.recv())["type"] == "welcome"
    return ws


def until(ws, kind: str) -> list[dict]:
    seen = []
    while True:
        event = json.loads(ws.recv())
        seen.append(event)
        if event["type"] == kind:
            return seen


def reply_of(hosts, user, chat, host="web_b") -> dict:
    history = httpx.get(f"{hosts.url(host)}/api/v1/chat/chats/{chat}", headers=user["headers"]).json()["messages"]
    return [m for m in history if m["message_type"] == "AI"][-1]


def expected(tokens: int) -> str:
    return "".join(f"t{i} " for i in range(tokens))


def test_reply_streams_through_web_a_from_worker_c_and_stops_through_web_b(hosts, user, upstream):
    upstream.configure(tokens=20, delay_ms=10)
    chat = new_chat(hosts, user)
    ws = socket(hosts, user, chat, "web_a")
    assert send(hosts, user, chat, "web_b").status_code == 200
    events = until(ws, "ai_response_complete")
    assert events[-1]["message"]["content"] == expected(20)
    job = Job.fetch(queues.reply_job_id(events[-1]["message"]["id"]), serializer=JSONSerializer,
                    connection=Redis.from_url(hosts.env["REDIS_URL"]))
    assert f".{hosts.processes['worker_c'].pid}." in job.worker_name  # generated on worker host C

    upstream.configure(tokens=400, delay_ms=25)
    send(hosts, user, chat, "web_a", "A long one")
    reply_id = until(ws, "ai_response_chunk")[-1]["message_id"]
    stop = httpx.post(f"{hosts.url('web_b')}/api/v1/chat/chats/{chat}/messages/{reply_id}/stop", headers=user["headers"])
    asked = time.monotonic()
    assert stop.status_code == 200
    end = until(ws, "ai_response_complete")[-1]
    assert time.monotonic() - asked < 1.0
    assert end["message"]["status"] == "CANCELLED" and expected(400).startswith(end["message"]["content"])
    ws.close()


def test_stats_and_stream_limit_span_both_web_hosts(hosts, user, upstream):
    chat = new_chat(hosts, user)
    sockets = [socket(hosts, user, chat, "web_a"), socket(hosts, user, chat, "web_b")]
    for host in ("web_a", "web_b"):
        stats = httpx.get(hosts.url(host) + "/api/v1/chat/stats", headers=user["headers"]).json()
        assert stats["websocket_connections"]["connections_per_chat"][chat] == 2

    upstream.configure(tokens=400, delay_ms=25)
    chats = [new_chat(hosts, user) for _ in range(3)]
    assert send(hosts, user, chats[0], "web_a").status_code == 200
    assert send(hosts, user, chats[1], "web_b").status_code == 200  # MAX_CONCURRENT_STREAMS=2 per user...
    assert send(hosts, user, chats[2], "web_a").status_code == 429  # ...whichever web host counts them
    for chat_id in chats[:2]:
        reply = reply_of(hosts, user, chat_id)
        httpx.post(f"{hosts.url('web_a')}/api/v1/chat/chats/{chat_id}/messages/{reply['id']}/stop",
                   headers=user["headers"])
    for ws in sockets:
        ws.close()


def test_web_host_dies_mid_reply_and_the_client_resumes_on_the_other(hosts, user, upstream):
    upstream.configure(tokens=80, delay_ms=25)
    chat = new_chat(hosts, user)
    ws = socket(hosts, user, chat, "web_a")
    send(hosts, user, chat, "web_a")
    seen = [e for e in until(ws, "ai_response_chunk")]
    while len([e for e in seen if e["type"] == "ai_response_chunk"]) < 5:
        seen.append(json.loads(ws.recv()))
    hosts.kill("web_a")  # SIGKILL: no goodbye to the client
    with pytest.raises(Exception):
        while True:
            seen.append(json.loads(ws.recv()))

    resumed = socket(hosts, user, chat, "web_b", last_event_id=seen[-1]["event_id"])
    rest = until(resumed, "ai_response_complete")
    chunks = [e for e in seen + rest if e["type"] == "ai_response_chunk"]
    ids = [e["event_id"] for e in seen + rest if "event_id" in e]
    assert len(ids) == len(set(ids))  # no event twice
    assert "".join(e["chunk"] for e in chunks) == expected(80) == rest[-1]["message"]["content"]  # no gap
    resumed.close()


def test_worker_host_killed_mid_reply_leaves_nothing_processing(hosts, user, upstream):
    upstream.configure(tokens=2000, delay_ms=25)
    chat = new_chat(hosts, user, "web_b")
    ws = socket(hosts, user, chat, "web_b")
    send(hosts, user, chat, "web_b")
    for _ in range(5):
        until(ws, "ai_response_chunk")
    hosts.kill("worker_c")  # the host is gone: no shutdown, no failure callback
    hosts.start_worker("worker_d", maintenance_s=2)  # its maintenance finds the abandoned job
    # The dead thread-worker's heartbeat lasts the job timeout (10 s here) + 60 s.
    end = wait_for(lambda: (r := reply_of(hosts, user, chat))["status"] != "PROCESSING" and r, 120, 1,
                   "reply ended")
    assert end["status"] == "FAILED" and end["content"] and expected(2000).startswith(end["content"])
    error = until(ws, "ai_error")[-1]
    assert error["error_code"] == "worker_lost"
    ws.close()
    hosts.kill("worker_d", signal.SIGTERM)
