"""The production web process: gunicorn's workers share one /metrics; SIGTERM closes sockets with 1001
and ends SSE streams."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websocket
from prometheus_client.parser import text_string_to_metric_families

from tests.admin.accounts import promote
from tests.conftest import REAL_SERVICES, wait_for
from web.realtime import going_away

ROOT = Path(__file__).resolve().parents[1]

needs_real_services = pytest.mark.skipif(not REAL_SERVICES,
                                         reason="gunicorn's processes share Redis and a database (real services)")


def test_going_away_closes_every_open_socket_with_1001(connect, make_chat, alice, monkeypatch):
    monkeypatch.setattr(going_away, "_sockets", going_away.OpenSockets())  # this process is not really stopping
    sockets = [connect(make_chat(alice)["id"], alice["access_token"]) for _ in range(2)]
    for ws in sockets:
        ws.until("welcome")
    assert going_away.open_sockets().close_all() == 2
    for ws in sockets:
        opcode, data = ws.ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict[str, str], stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, str]:
    """`web:create_app()` under gunicorn on a free port with `env` added; (process, base URL) once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "web:create_app()"], cwd=ROOT,
                               env={**os.environ, "PORT": str(port), **env},
                               stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(base + "/api/v1/auth/me", timeout=2).status_code == 401
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, interval=0.2, what="gunicorn up")
    except AssertionError:
        process.kill()
        process.communicate()
        raise
    return process, base


@pytest.fixture
def gunicorn(settings, tmp_path):
    process, base = start_gunicorn({"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                                    "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                                    "SECRET_KEY": settings.secret_key, "OPENAI_API_KEY": settings.openai_api_key,
                                    "OPENAI_BASE_URL": settings.openai_base_url}, stderr=subprocess.PIPE)
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@needs_real_services
def test_metrics_sum_the_worker_processes_and_sigterm_says_going_away(gunicorn, make_user, alice, fake_upstream):
    process, base = gunicorn
    admin = promote(make_user("ops"))
    for _ in range(6):  # new connections: either worker process may answer each
        assert httpx.get(base + "/api/v1/auth/me", headers=alice.headers).status_code == 200
    text = httpx.get(base + "/metrics", headers=admin.headers).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    me = ("parley_http_requests_total", (("method", "GET"), ("route", "/api/v1/auth/me"), ("status", "200")))
    assert samples[me] == 6

    chat = httpx.post(base + "/api/v1/chat/chats", json={"title": "Going away"}, headers=alice.headers).json()
    ws = websocket.create_connection(base.replace("http", "ws") + f"/api/v1/chat/chats/{chat['id']}/ws"
                                     f"?token={alice['access_token']}", timeout=10)
    assert "welcome" in ws.recv()
    fake_upstream.configure(tokens=200, delay_ms=50)  # a reply (run by this test's workers) still streaming
    with httpx.stream("POST", base + "/v1/chat/stream", headers=alice.headers, timeout=10,
                      json={"model": "gpt-4", "messages": [{"role": "user", "content": "Go on"}]}) as sse:
        lines = sse.iter_lines()
        while not next(lines).startswith("data: t1 "):
            pass
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1001
        rest = list(lines)  # the stream ends, without [DONE], once the process says it is going away
    assert "retry: 500" in rest and "data: [DONE]" not in rest
    assert time.monotonic() - started < 5
    assert process.wait(timeout=15) == 0
