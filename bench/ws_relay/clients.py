"""The DIRECT (openai client) and RELAYED (WebSocket + POST) clients, and REST set-up helpers."""
from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from bench.ws_relay.phases import Stream

PASSWORD = "bench-password-123"
MODEL = "gpt-3.5-turbo"


def directive(tokens: int, delay_ms: int) -> str:
    return f"[[fake:tokens={tokens} delay_ms={delay_ms}]]"


def run_threads(n: int, target: Callable[[int, threading.Barrier], None]) -> None:
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=target, args=(i, barrier), daemon=True, name=f"client-{i}")
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def direct_phase(client: Any, n: int, tokens: int, delay_ms: int, timeout: float,
                 start_at: float | None = None) -> list[Stream]:
    """N threads of this process each stream one completion; all start at `start_at` (perf_counter)."""
    streams = [Stream() for _ in range(n)]
    prompt = f"bench direct {directive(tokens, delay_ms)}"

    def one(i: int, barrier: threading.Barrier) -> None:
        s = streams[i]
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            s.error = "barrier"
            return
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.perf_counter()))
        s.t_send = time.perf_counter()
        try:
            stream = client.with_options(timeout=timeout).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True,
                stream_options={"include_usage": True})
            for chunk in stream:
                now = time.perf_counter()
                for choice in chunk.choices:
                    if choice.delta.content:
                        s.events.append((now, choice.delta.content))
                        s.text += choice.delta.content
            s.t_end = time.perf_counter()
            s.final = s.text
        except Exception as exc:  # counted, not raised: one failure must not stop the run
            s.error = f"exception: {type(exc).__name__}: {exc}"

    run_threads(n, one)
    return streams


def _direct_server(conn: Any, base_url: str, timeout: float) -> None:
    """A helper process for the DIRECT phase: the clients' SSE parsing is CPU-bound, and one
    process's GIL would make the baseline the benchmark's own limit, so it runs in several."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="bench-key", max_retries=0,
                           timeout=openai.Timeout(timeout, connect=10.0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    while True:
        job = conn.recv()
        if job is None:
            return
        n, tokens, delay_ms, start_at = job
        conn.send(direct_phase(client, n, tokens, delay_ms, timeout, start_at) if n else [])


class DirectClients:
    """`procs` processes sharing the DIRECT clients of a phase; all start at the same instant."""

    def __init__(self, procs: int, base_url: str, timeout: float) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_direct_server, args=(child, base_url, timeout), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def run(self, n: int, tokens: int, delay_ms: int) -> list[Stream]:
        k = len(self.conns)
        shares = [n // k + (1 if i < n % k else 0) for i in range(k)]
        start_at = time.perf_counter() + 0.2 + n * 0.001  # time for every process to start its threads
        for conn, share in zip(self.conns, shares):
            conn.send((share, tokens, delay_ms, start_at))
        return [s for conn in self.conns for s in conn.recv()]

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.send(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


@dataclass
class Client:
    user: int
    token: str
    chat_id: str = ""


def relayed_phase(host: str, port: int, clients: list[Client], tokens: int, delay_ms: int,
                  timeout: float) -> list[Stream]:
    import websocket  # websocket-client

    n = len(clients)
    streams = [Stream() for _ in range(n)]
    body_text = f"bench relayed {directive(tokens, delay_ms)}"

    def one(i: int, barrier: threading.Barrier) -> None:
        c, s = clients[i], streams[i]
        ws = conn = None
        try:
            ws = websocket.create_connection(
                f"ws://{host}:{port}/api/v1/chat/chats/{c.chat_id}/ws?token={c.token}", timeout=30)
            welcome = json.loads(ws.recv())
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"first event was {welcome.get('type')}")
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception as exc:
            s.error = f"connect: {type(exc).__name__}: {exc}"  # still joins the barrier below
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            s.error = s.error or "barrier"
        if s.error:
            if ws is not None:
                ws.close()
            return
        body = json.dumps({"content": body_text})
        s.t_send, s.wall_send = time.perf_counter(), time.time()
        deadline = s.t_send + timeout
        try:
            # The POST is sent, then its response is read whenever it is ready, while the
            # socket's events are read (and timestamped) as they come.
            conn.request("POST", f"/api/v1/chat/chats/{c.chat_id}/messages", body=body,
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {c.token}"})
            watch = [ws.sock, conn.sock]
            reply_id = None
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    s.error = "timeout"
                    break
                ready, _, _ = select.select(watch, [], [], min(left, 1.0))
                if conn.sock in ready and conn.sock in watch:
                    resp = conn.getresponse()
                    data = resp.read()
                    s.marks["post_response"] = time.perf_counter()
                    watch.remove(conn.sock)
                    if resp.status != 200:
                        s.error = f"post_failed: HTTP {resp.status} {data[:200]!r}"
                        break
                if ws.sock not in ready:
                    continue
                raw = ws.recv()
                now, wall = time.perf_counter(), time.time()
                event = json.loads(raw)
                kind = event.get("type")
                s.marks.setdefault(kind, now)
                if kind == "ai_response_start":
                    reply_id = event["message"]["id"]
                    s.stamps.setdefault(kind, (wall, appended_at(event)))
                elif kind == "ai_response_chunk" and event.get("message_id") == reply_id:
                    s.stamps.setdefault(kind, (wall, appended_at(event)))
                    s.events.append((now, event["chunk"]))
                    s.text += event["chunk"]
                    if event.get("full_content") != s.text:
                        s.error = "mismatch (full_content differs from the concatenated chunks)"
                elif kind == "ai_response_complete":
                    s.t_end = now
                    s.final = event["message"]["content"]
                    break
                elif kind == "ai_error":
                    s.t_end = now
                    s.error = f"ai_error: {event.get('error_code')}"
                    break
                elif kind == "error":
                    s.error = f"ws_error: {event.get('error_code')}"
                    break
        except Exception as exc:
            s.error = s.error or f"exception: {type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                ws.close()
            with contextlib.suppress(Exception):
                conn.close()

    run_threads(n, one)
    return streams


def appended_at(event: dict) -> float:
    """When Redis appended a relayed event to the chat's stream (its id's milliseconds), in s."""
    return int(event["event_id"].split("-")[0]) / 1000


def api(host: str, port: int, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def make_user(host: str, port: int, tag: str, i: int) -> Client:
    name = f"bench_{tag}_{i}"
    status, data = api(host, port, "POST", "/api/v1/auth/register",
                       {"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    if status != 201:
        raise RuntimeError(f"register {name}: HTTP {status} {data}")
    status, data = api(host, port, "POST", "/api/v1/auth/login", {"username": name, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login {name}: HTTP {status} {data}")
    return Client(user=i, token=data["access_token"])


def new_chats(host: str, port: int, clients: list[Client], title: str) -> None:
    def one(c: Client) -> None:
        status, data = api(host, port, "POST", "/api/v1/chat/chats", {"title": title}, c.token)
        if status not in (200, 201):
            raise RuntimeError(f"create chat: HTTP {status} {data}")
        c.chat_id = data["id"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, clients))
