"""Scale-out benchmark: the multi-host topology of `tests/multihost` under load (run as root).

    sudo python -m bench.scale_out [--clients 50,200] [--delays 0,20] [--tokens 64]

Builds the hosts of `tests.multihost.topology` (PostgreSQL and Redis on one network
namespace, gunicorn on two, `python -m workers` on two; every process bound to its host's
address) and a fake upstream on the bridge. For every delay D (ms/token) and client count N,
N WebSocket clients, spread evenly over both web hosts, each POST one message to the web
host they are connected to and read the reply's events. It prints, in the form of the
single-host table of `docs/performance.md`: time to first token (POST sent to first
`ai_response_chunk`) p50 and p99, tokens/s (all tokens received / wall time from the first
POST to the last reply), and errors (a reply that is short, wrong or ends in `ai_error`).

All hosts share this machine's cores: the figures show what two web and two worker
processes do together here, not what two machines would.
"""
from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid

import httpx
import websocket

from tests.fake_openai import FakeOpenAI
from tests.multihost.topology import BRIDGE_IP, Topology, missing_requirements

WEB_HOSTS = ("web_a", "web_b")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def account(hosts: Topology) -> dict[str, str]:
    name, password = f"bench{uuid.uuid4().hex[:8]}", "correct horse battery"
    httpx.post(hosts.url("web_a") + "/api/v1/auth/register",
               json={"email": f"{name}@example.com", "username": name, "password": password}).raise_for_status()
    token = httpx.post(hosts.url("web_b") + "/api/v1/auth/login",
                       json={"username": name, "password": password}).json()["access_token"]
    return {"token": token, "Authorization": f"Bearer {token}"}


def run_round(hosts: Topology, user: dict[str, str], clients: int, tokens: int) -> dict[str, float]:
    """One reply per client, all at once; returns the round's figures."""
    expected = "".join(f"t{i} " for i in range(tokens))
    headers = {"Authorization": user["Authorization"]}
    sockets, chats = [], []
    for i in range(clients):
        host = WEB_HOSTS[i % 2]
        chat = httpx.post(hosts.url(host) + "/api/v1/chat/chats", json={"title": f"bench {i}"},
                          headers=headers).json()["id"]
        ws = websocket.create_connection(f"ws://{hosts.ip(host)}:8000/api/v1/chat/chats/{chat}/ws"
                                         f"?token={user['token']}", timeout=120)
        assert json.loads(ws.recv())["type"] == "welcome"
        sockets.append((host, ws))
        chats.append(chat)
    ttft: list[float] = []
    errors: list[str] = []
    received = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    finished_at: list[float] = []

    def client(i: int) -> None:
        host, ws = sockets[i]
        start_gate.wait()
        sent = time.monotonic()
        try:
            with httpx.Client(timeout=60) as http:
                answer = http.post(f"{hosts.url(host)}/api/v1/chat/chats/{chats[i]}/messages",
                                   json={"content": "Tell me a story"}, headers=headers)
            failure = None if answer.status_code == 200 else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        if failure is not None:
            with lock:
                errors.append(failure)
            return
        first, text = None, ""
        while True:
            event = json.loads(ws.recv())
            if event["type"] == "ai_response_chunk":
                first = first or time.monotonic()
                text += event["chunk"]
            elif event["type"] in ("ai_response_complete", "ai_error"):
                break
        with lock:
            finished_at.append(time.monotonic())
            received[0] += len(re.findall(r"t\d+ ", text))
            if first is not None:
                ttft.append((first - sent) * 1000)
            if event["type"] == "ai_error" or text != expected:
                errors.append(event.get("error_code") or "wrong text")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    for _, ws in sockets:
        ws.close()
    wall = (max(finished_at) if finished_at else time.monotonic()) - began
    kinds = {kind: errors.count(kind) for kind in sorted(set(errors))}
    return {"ttft_p50": percentile(ttft, 0.5), "ttft_p99": percentile(ttft, 0.99),
            "tok_s": received[0] / wall if wall > 0 else 0.0, "wall": wall,
            "errors": ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "0"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--delays", default="0,20")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--worker-threads", type=int, default=100)
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        parser.error(reason)

    # One account opens every socket: neither its reply nor its connection cap may refuse one.
    hosts = Topology(extra_env={"MAX_CONCURRENT_STREAMS": "100000", "MAX_CONNECTIONS_PER_USER": "100000",
                                "REPLY_JOB_TIMEOUT_S": "600"})
    upstream = None
    try:
        hosts.build()
        upstream = FakeOpenAI(host=BRIDGE_IP).start()
        hosts.upstream_url = upstream.base_url
        hosts.start_db()
        for host in WEB_HOSTS:
            hosts.start_web(host)
        for host in ("worker_c", "worker_d"):
            hosts.start_worker(host, threads=args.worker_threads)
        for host in WEB_HOSTS:
            hosts.wait_web(host)
        user = account(hosts)
        upstream.configure(tokens=4)
        run_round(hosts, user, 4, 4)  # warm-up: connection pools, first imports
        print("| D ms/tok | N | TTFT p50 ms | TTFT p99 ms | tok/s | errors | wall s |")
        print("|---|---|---|---|---|---|---|")
        for delay in (int(d) for d in args.delays.split(",")):
            upstream.configure(tokens=args.tokens, delay_ms=delay)
            for clients in (int(n) for n in args.clients.split(",")):
                figures = run_round(hosts, user, clients, args.tokens)
                print(f"| {delay} | {clients} | {figures['ttft_p50']:,.1f} | {figures['ttft_p99']:,.1f} | "
                      f"{figures['tok_s']:,.0f} | {figures['errors']} | {figures['wall']:.2f} |", flush=True)
    finally:
        if upstream is not None:
            upstream.stop()
        hosts.destroy()


if __name__ == "__main__":
    main()
