"""WebSocket relay benchmark: what does Parley add between the upstream and the client?

    python -m bench.ws_relay [--clients 1,50,200] [--delays 0,20] [--tokens 64]
                             [--web-workers 2] [--worker-threads 200]

Starts its own fake upstream (`tests.fake_openai`), gunicorn web tier and one threaded RQ
worker process on a benchmark database (`parley_bench`, dropped and re-created) and Redis
db 5 (flushed), then for every delay D (ms/token) and client count N measures:

* DIRECT: N threads stream one completion each straight from the fake upstream with the
  `openai` client (the same call the worker makes);
* RELAYED: N WebSocket clients (each its own user and chat, socket opened and welcomed
  before timing starts) each POST one message and read the reply's events.

Time to first token (TTFT) runs from the request being sent (the `create()` call, the
POST) to the first content token (first non-empty delta, first `ai_response_chunk`).
Inter-token latency (ITL) is per TOKEN: a chunk event holding k tokens (counted as
`t<i> ` matches) that arrives `g` after the previous one counts as k gaps of g/k.
Tokens/s is all tokens received by all clients / wall time from the first request sent to
the last reply finished. Every reply is checked against the expected text
(`t0 t1 ... t63 `): a reply that is short, wrong, late, or ends in `ai_error` is an error.

Everything shares the machine's cores (benchmark, fake upstream, gunicorn, worker,
PostgreSQL, Redis): per-phase CPU use of each is printed from /proc to show where time goes.
"""
from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import contextlib
import http.client
import json
import math
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = ["-h", "127.0.0.1", "-U", "postgres"]
PG_URL = "postgresql://postgres@127.0.0.1:5432"
TOKEN_RE = re.compile(r"t\d+ ")
PASSWORD = "bench-password-123"
MODEL = "gpt-3.5-turbo"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# Processes


class Services:
    """Subprocesses started by the benchmark, each in its own session (process group)."""

    def __init__(self, log_dir: Path, source: Path) -> None:
        self.log_dir = log_dir
        self.source = source
        self.procs: dict[str, subprocess.Popen] = {}
        self._stopped = False

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=self.source, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}:\n"
                                   + tail(self.log_dir / f"{name}.log"))

    def stop_all(self) -> None:
        """SIGTERM each process group we started, then SIGKILL what is left after a grace period."""
        if self._stopped:
            return
        self._stopped = True
        for proc in self.procs.values():
            if proc.poll() is None:
                _killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 8.0
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            _killpg(proc.pid, signal.SIGKILL)  # also reaps gunicorn workers left in the group
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], bool], services: Services, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def prepare_database(db_name: str, env: dict[str, str], source: Path) -> None:
    for sql in (f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)', f'CREATE DATABASE "{db_name}"'):
        subprocess.run(["psql", *PG_ADMIN, "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["flask", "--app", "web", "db", "upgrade"], cwd=source, env=env, check=True,
                   stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------
# CPU accounting from /proc


def _proc_stat(pid: int) -> tuple[int, str, float, int] | None:
    """(ppid, comm, cpu seconds, start time) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[1]), comm, (int(rest[11]) + int(rest[12])) / CLK_TCK, int(rest[19])


def _run_delay(pid: int) -> float:
    """Seconds the threads of a process have spent runnable but waiting for a CPU."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def _all_procs() -> dict[int, tuple[int, str, float, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                found[int(entry)] = stat
    return found


def _machine_busy() -> tuple[float, float, float, float]:
    """(busy, total, irq+softirq, steal) jiffies of the whole machine (guest time is inside user)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), fields[5] + fields[6], fields[7]


class CpuMeter:
    """CPU use per component between two snapshots (per process, so exits do not go negative)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def group_of(self, pid: int, ppid: int, comm: str) -> str | None:
        for name, proc in self.services.procs.items():
            if pid == proc.pid:
                return name
            if ppid == proc.pid:
                return f"web[{pid}]" if name == "web" else name
        if pid == os.getpid() or ppid == os.getpid():  # the DIRECT helper processes
            return "bench"
        if comm == "redis-server":
            return "redis"
        if comm in ("postgres", "postmaster"):
            return "postgres"
        return None

    def snapshot(self) -> dict[str, Any]:
        busy, total, irq, steal = _machine_busy()
        procs = _all_procs()
        waits = {pid: _run_delay(pid) for pid, (ppid, comm, *_r) in procs.items()
                 if self.group_of(pid, ppid, comm) in ("web", "worker") or
                 (self.group_of(pid, ppid, comm) or "").startswith("web[")}
        return {"t": time.monotonic(), "procs": procs, "busy": busy, "total": total, "irq": irq,
                "steal": steal, "waits": waits}

    def diff(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        wall = b["t"] - a["t"]
        out: dict[str, Any] = {}
        unrelated: set[str] = set()
        for pid, (ppid, comm, cpu, started) in b["procs"].items():
            group = self.group_of(pid, ppid, comm)
            before = a["procs"].get(pid)
            used = cpu - (before[2] if before is not None and before[3] == started else 0.0)
            if group is None:  # processes that are not part of the benchmark (another job on the machine?)
                group = "unrelated"
                if used > 0.05 * wall:
                    unrelated.add(f"{comm}[{pid}]")
            out[group] = out.get(group, 0.0) + used / wall * 100
            if group.startswith("web["):
                out["web"] = out.get("web", 0.0) + used / wall * 100
        total = b["total"] - a["total"]
        scale = 100 * os.cpu_count() / total if total else 0.0
        out["machine"] = (b["busy"] - a["busy"]) * scale
        out["irq"] = (b["irq"] - a["irq"]) * scale
        out["steal"] = (b["steal"] - a["steal"]) * scale
        if unrelated:
            out["unrelated_names"] = ", ".join(sorted(unrelated))
        for pid, waited in b["waits"].items():  # run-queue wait: ready to run, no CPU free
            if pid in a["waits"]:
                ppid, comm, *_r = b["procs"][pid]
                group = self.group_of(pid, ppid, comm)
                key = "worker_runq" if group == "worker" else "web_runq"
                out[key] = out.get(key, 0.0) + (waited - a["waits"][pid]) / wall * 100
        return out


class Profiler:
    """`py-spy record` on the web workers and the RQ worker during one phase (optional)."""

    def __init__(self, services: Services, out_dir: Path) -> None:
        self.services = services
        self.out_dir = out_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, label: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        targets = {"worker": self.services.procs["worker"].pid}
        for pid, (ppid, *_rest) in _all_procs().items():
            if ppid == self.services.procs["web"].pid:
                targets[f"web-{pid}"] = pid
        for name, pid in targets.items():
            out = self.out_dir / f"{label}-{name}.txt"
            self.procs.append(subprocess.Popen(
                ["py-spy", "record", "--format", "raw", "--rate", "100", "--gil", "--nonblocking", "-o", str(out),
                 "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(1.0)  # py-spy needs a moment to attach

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


# ---------------------------------------------------------------------------------------
# Measurements


@dataclass
class Stream:
    """One client's reply: when it was asked for, when each chunk came, what it said."""

    t_send: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)  # (arrival, chunk text)
    t_end: float | None = None
    text: str = ""
    final: str | None = None
    error: str | None = None
    marks: dict[str, float] = field(default_factory=dict)  # first arrival of other milestones

    def token_times(self) -> list[float]:
        """Arrival time of every token; an event of k tokens is spread evenly over its gap."""
        times: list[float] = []
        prev: float | None = None
        for t, chunk in self.events:
            k = len(TOKEN_RE.findall(chunk))
            if k == 0:
                continue
            if prev is None or k == 1:
                times.extend([t] * k if prev is None else [t])
            else:
                times.extend(prev + (t - prev) * j / k for j in range(1, k + 1))
            prev = t
        return times


@dataclass
class Phase:
    """One measured phase: one or more rounds of N concurrent streams."""

    rounds: list[list[Stream]]
    cpu: dict[str, float]
    expected: str

    def __post_init__(self) -> None:
        self.streams = [s for r in self.rounds for s in r]
        for s in self.streams:
            if s.error is None and s.text != self.expected:
                got = len(TOKEN_RE.findall(s.text))
                s.error = f"mismatch ({got} tokens received)"
            if s.error is None and s.final is not None and s.final != self.expected:
                s.error = "mismatch (final content differs)"

    @property
    def ok(self) -> list[Stream]:
        return [s for s in self.streams if s.error is None]

    def ttft(self) -> list[float]:
        return [s.events[0][0] - s.t_send for s in self.streams if s.events]

    def itl(self) -> list[float]:
        gaps: list[float] = []
        for s in self.streams:
            times = s.token_times()
            gaps.extend(b - a for a, b in zip(times, times[1:]))
        return gaps

    def tokens(self) -> int:
        return sum(len(TOKEN_RE.findall(s.text)) for s in self.streams)

    def wall(self) -> float:
        """Summed over rounds: first request sent to last reply finished."""
        total = 0.0
        for streams in self.rounds:
            sent = [s.t_send for s in streams if s.t_send]
            ends = [s.t_end or (s.events[-1][0] if s.events else s.t_send) for s in streams if s.t_send]
            if sent:
                total += max(ends) - min(sent)
        return total

    def rate(self) -> float:
        wall = self.wall()
        return self.tokens() / wall if wall > 0 else 0.0

    def mark(self, name: str, p: float = 50) -> float:
        """Percentile of the time from send to a milestone (e.g. the POST response, new_message)."""
        return pct([s.marks[name] - s.t_send for s in self.streams if name in s.marks], p)

    def duration(self, p: float = 50) -> float:
        return pct([s.events[-1][0] - s.events[0][0] for s in self.streams if s.events], p)

    def multi_token_events(self) -> int:
        return sum(1 for s in self.streams for _, c in s.events if len(TOKEN_RE.findall(c)) > 1)

    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.streams:
            if s.error:
                kind = s.error.split(":")[0].split(" (")[0]
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


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
        s.t_send = time.perf_counter()
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
                now = time.perf_counter()
                event = json.loads(raw)
                kind = event.get("type")
                s.marks.setdefault(kind, now)
                if kind == "ai_response_start":
                    reply_id = event["message"]["id"]
                elif kind == "ai_response_chunk" and event.get("message_id") == reply_id:
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


# ---------------------------------------------------------------------------------------
# REST helpers (setup, untimed)


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


# ---------------------------------------------------------------------------------------
# Report


def ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 1000:.1f}"


def fmt_errors(phase: Phase) -> str:
    errs = phase.errors()
    return "0" if not errs else ", ".join(f"{k} {v}" for k, v in sorted(errs.items()))


def summary_row(delay: int, n: str, direct: Phase, relayed: Phase, ideal: float) -> list[str]:
    d_ttft, r_ttft = direct.ttft(), relayed.ttft()
    d_itl, r_itl = direct.itl(), relayed.itl()
    d_rate, r_rate = direct.rate(), relayed.rate()
    return [
        str(delay), n,
        f"{ms(pct(r_ttft, 50) - pct(d_ttft, 50))} ({ms(pct(d_ttft, 50))} → {ms(pct(r_ttft, 50))})",
        f"{ms(pct(r_ttft, 99) - pct(d_ttft, 99))} ({ms(pct(d_ttft, 99))} → {ms(pct(r_ttft, 99))})",
        f"{ms(pct(d_itl, 50))} / {ms(pct(r_itl, 50))}",
        f"{ms(pct(d_itl, 99))} / {ms(pct(r_itl, 99))}",
        f"{ideal:,.0f}" if ideal else "-", f"{d_rate:,.0f}", f"{r_rate:,.0f}",
        f"{r_rate / d_rate:.2f}" if d_rate else "n/a",
        f"{fmt_errors(direct)} / {fmt_errors(relayed)}",
    ]


HEADER = ["delay ms/tok", "N", "TTFT added p50 ms (direct → relayed)", "TTFT added p99 ms (direct → relayed)",
          "ITL p50 ms direct / relayed", "ITL p99 ms direct / relayed", "ideal tok/s", "direct tok/s", "relayed tok/s",
          "relayed/direct", "errors direct / relayed"]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


CPU_ORDER = ["bench", "fake", "web", "worker", "postgres", "redis", "irq", "unrelated", "steal", "machine",
             "web_runq", "worker_runq"]


def cpu_cells(cpu: dict[str, float]) -> list[str]:
    cells = [f"{cpu.get(k, 0.0):.0f}" for k in CPU_ORDER]
    per_web = sorted(k for k in cpu if k.startswith("web["))
    cells.append(" + ".join(f"{cpu[k]:.0f}" for k in per_web))
    return cells


CPU_LABELS = {"web_runq": "web waiting for a CPU %", "worker_runq": "worker waiting for a CPU %",
              "irq": "irq+softirq %", "unrelated": "unrelated processes %", "machine": "machine total %"}
CPU_HEADER = (["delay", "N", "phase", "wall s"] + [CPU_LABELS.get(k, f"{k} %") for k in CPU_ORDER]
              + ["per gunicorn worker %"])


# ---------------------------------------------------------------------------------------
# Main


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=parse_ints, default=[1, 50, 200], help="comma-separated N")
    parser.add_argument("--delays", type=parse_ints, default=[0, 20], help="comma-separated ms/token")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--worker-threads", type=int, default=200, help="threads of the one RQ worker process")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a reply may take before it is an error")
    parser.add_argument("--db", default="parley_bench", help="database to (re)create for the run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5", help="Redis db to FLUSH and use")
    parser.add_argument("--log-dir", type=Path, default=None, help="where service logs go (default: a temp dir)")
    parser.add_argument("--source", type=Path, default=REPO,
                        help="Parley checkout whose services are started (default: this repository's work tree)")
    parser.add_argument("--ref", default=None,
                        help="measure this commit of the repository instead (exported with `git archive` to a "
                             "temporary directory), e.g. HEAD to leave uncommitted work out")
    parser.add_argument("--single-rounds", type=int, default=10,
                        help="N=1 is noisy: run it this many times in a row and pool the samples")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the web workers and the worker during the largest-N relayed phases, into DIR")
    parser.add_argument("--direct-procs", type=int, default=2,
                        help="processes sharing the DIRECT clients (their SSE parsing is CPU-bound)")
    parser.add_argument("--quiet-wait", type=float, default=15.0,
                        help="before each cell, wait up to this many seconds for the machine to be idle")
    parser.add_argument("--json", type=Path, default=None, help="also write raw figures to this file")
    args = parser.parse_args(argv)

    import redis as redis_lib

    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="parley-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    source = args.source.resolve()
    source_label = describe_source(source)
    if args.ref:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", args.ref], capture_output=True,
                                text=True, check=True).stdout.strip()
        export = log_dir / f"parley-{commit}"
        export.mkdir(exist_ok=True)
        archive = subprocess.run(["git", "-C", str(source), "archive", args.ref], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(export)], input=archive.stdout, check=True)
        source, source_label = export, f"commit {commit} (git archive {args.ref})"
    services = Services(log_dir, source)
    atexit.register(services.stop_all)

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored

    host = "127.0.0.1"
    fake_port, web_port = free_port(), free_port()
    fake_url = f"http://{host}:{fake_port}/v1"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG_URL}/{args.db}", REDIS_URL=args.redis_url, SECRET_KEY="bench-secret-" + "x" * 27,
        OPENAI_API_KEY="bench-key", OPENAI_BASE_URL=fake_url, PORT=str(web_port),
        RATE_LIMIT="1000000/minute",  # the per-user/IP limiter stays on, but setup is 400 requests from one IP
        WEB_CONCURRENCY=str(args.web_workers), PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
    )
    env.pop("PRODUCTION", None)
    started = time.monotonic()
    try:
        log(f"logs in {log_dir}; Parley from {source} ({source_label})")
        redis = redis_lib.Redis.from_url(args.redis_url)
        redis.flushdb()
        prepare_database(args.db, env, source)
        log(f"database {args.db} migrated; Redis {args.redis_url} flushed")

        services.start("fake", [sys.executable, "-m", "tests.fake_openai", "--host", host, "--port", str(fake_port),
                                "--tokens", str(args.tokens), "--delay-ms", "0"], env)
        services.start("web", ["gunicorn", "web:create_app()"], env)
        services.start("worker", [sys.executable, "-m", "workers", "--queues", "replies",
                                  "--threads", str(args.worker_threads)], env)
        wait_for("fake upstream", lambda: http_status(f"{fake_url}/models") == 200, services)
        wait_for("gunicorn", lambda: http_status(f"http://{host}:{web_port}/api/v1/chat/chats") == 401, services)
        from rq import Worker

        wait_for("RQ worker threads", lambda: Worker.count(connection=redis) >= args.worker_threads, services)
        log(f"ready: fake :{fake_port}, gunicorn :{web_port} x{args.web_workers}, "
            f"worker x{args.worker_threads} threads ({time.monotonic() - started:.1f}s)")

        max_n = max(args.clients)
        tag = uuid.uuid4().hex[:6]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            users = list(pool.map(lambda i: make_user(host, web_port, tag, i), range(max_n)))
        log(f"{max_n} users registered and logged in ({time.monotonic() - t0:.1f}s)")

        direct_clients = DirectClients(args.direct_procs, fake_url, args.timeout)
        atexit.register(direct_clients.close)
        expected = "".join(f"t{i} " for i in range(args.tokens))

        # Warm-up (not measured): pools, lazy threads (hub, stop watcher), both gunicorn workers.
        warm = [Client(u.user, u.token) for u in users[:min(8, max_n)]]
        new_chats(host, web_port, warm, "warm-up")
        warm_phase = Phase([relayed_phase(host, web_port, warm, args.tokens, 0, args.timeout)], {}, expected)
        Phase([direct_clients.run(len(warm), args.tokens, 0)], {}, expected)
        if warm_phase.errors():
            log(f"warm-up errors: {warm_phase.errors()} {[s.error for s in warm_phase.streams if s.error][:3]}")

        meter = CpuMeter(services)
        load = meter.diff(meter.snapshot(), (time.sleep(2.0), meter.snapshot())[1])
        log(f"machine busy while idle (2 s): {load['machine']:.0f}% of {100 * os.cpu_count()}% "
            f"(web {load.get('web', 0):.0f}%, worker {load.get('worker', 0):.0f}%, "
            f"unrelated {load.get('unrelated', 0):.0f}%)"
            + (" -- something else is using the CPU; figures will be disturbed" if load["machine"] > 20 else ""))
        rows, cpu_rows, raw = [], [], []
        for delay in args.delays:
            for n in args.clients:
                services.check_alive()
                wait_quiet(meter, args.quiet_wait)
                rounds = args.single_rounds if n == 1 else 1
                batches = []
                for _ in range(rounds):
                    batch = [Client(u.user, u.token) for u in users[:n]]
                    new_chats(host, web_port, batch, f"bench d{delay} n{n}")
                    batches.append(batch)
                time.sleep(0.5)

                a = meter.snapshot()
                direct = [direct_clients.run(n, args.tokens, delay) for _ in range(rounds)]
                b = meter.snapshot()
                d = Phase(direct, meter.diff(a, b), expected)
                time.sleep(0.5)

                profile = args.profile is not None and n == max_n
                if profile:
                    profiler = Profiler(services, args.profile)
                    profiler.start(f"d{delay}-n{n}")
                a = meter.snapshot()
                relayed = [relayed_phase(host, web_port, batch, args.tokens, delay, args.timeout) for batch in batches]
                b = meter.snapshot()
                if profile:
                    profiler.stop()
                r = Phase(relayed, meter.diff(a, b), expected)

                label = f"{n}" + (f" (x{rounds} in a row)" if rounds > 1 else "")
                # What N streams deliver if nothing but the upstream's pacing mattered (rounds run one after another).
                ideal = n * args.tokens / ((args.tokens - 1) * delay / 1000) if delay else 0.0
                row = summary_row(delay, label, d, r, ideal)
                rows.append(row)
                cpu_rows.append([str(delay), label, "direct", f"{d.wall():.2f}"] + cpu_cells(d.cpu))
                cpu_rows.append([str(delay), label, "relayed", f"{r.wall():.2f}"] + cpu_cells(r.cpu))
                log(f"delay={delay} N={label}: " + "; ".join(f"{h}: {v}" for h, v in zip(HEADER[2:], row[2:])))
                log("  relayed milestones p50/p99 ms after the POST was sent: " + ", ".join(
                    f"{name} {ms(r.mark(name))}/{ms(r.mark(name, 99))}"
                    for name in ("new_message", "post_response", "ai_response_start")))
                log(f"  reply duration (first to last token) p50 ms: direct {ms(d.duration())}, "
                    f"relayed {ms(r.duration())}")
                log("  CPU %: " + ", ".join(f"{k} {d.cpu.get(k, 0):.0f}/{r.cpu.get(k, 0):.0f}" for k in CPU_ORDER)
                    + " (direct/relayed)" + "".join(f"; unrelated: {p.cpu['unrelated_names']}" for p in (d, r)
                                                    if p.cpu.get("unrelated_names")))
                if r.multi_token_events() or d.multi_token_events():
                    log(f"  events holding >1 token: direct {d.multi_token_events()}, relayed {r.multi_token_events()}")
                for kind, phase in (("direct", d), ("relayed", r)):
                    bad = [s.error for s in phase.streams if s.error]
                    if bad:
                        log(f"  {kind} errors (first 3): {bad[:3]}")
                raw.append({
                    "delay_ms": delay, "clients": n, "rounds": rounds, "ideal_tokens_per_s": ideal,
                    **{f"{kind}_{k}": v for kind, phase in (("direct", d), ("relayed", r)) for k, v in {
                        "ttft_p50_ms": pct(phase.ttft(), 50) * 1000, "ttft_p99_ms": pct(phase.ttft(), 99) * 1000,
                        "itl_p50_ms": pct(phase.itl(), 50) * 1000, "itl_p99_ms": pct(phase.itl(), 99) * 1000,
                        "tokens": phase.tokens(), "wall_s": phase.wall(), "tokens_per_s": phase.rate(),
                        "errors": phase.errors(), "cpu_pct": phase.cpu,
                        "duration_p50_ms": phase.duration() * 1000,
                        **{f"{m}_p50_ms": phase.mark(m) * 1000
                           for m in ("new_message", "post_response", "ai_response_start")},
                    }.items()},
                })

        print()
        print(f"## Relay vs direct: Parley {source_label}; {args.tokens} tokens/reply, {args.web_workers} gunicorn "
              f"workers, 1 worker process x {args.worker_threads} threads; ITL per token (chunk events spread "
              f"over their tokens)")
        print()
        print(markdown(HEADER, rows))
        print()
        print("## CPU per component during each phase (% of one core; machine = all processes, "
              f"{os.cpu_count()} cores = {100 * os.cpu_count()}%)")
        print()
        print(markdown(CPU_HEADER, cpu_rows))
        print()
        problems = scan_logs(log_dir)
        if problems:
            print("## Warnings and errors in the service logs")
            print()
            for line in problems:
                print("    " + line)
            print()
        log(f"done in {time.monotonic() - started:.0f}s; logs in {log_dir}")
        if args.json:
            args.json.write_text(json.dumps(raw, indent=2))
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        services.stop_all()


def wait_quiet(meter: CpuMeter, max_wait: float, threshold: float = 30.0) -> None:
    """Wait (at most `max_wait` s) until the machine is near idle: others' load skews every figure."""
    deadline = time.monotonic() + max_wait
    while True:
        a = meter.snapshot()
        time.sleep(1.0)
        busy = meter.diff(a, meter.snapshot())["machine"]
        if busy < threshold:
            return
        if time.monotonic() >= deadline:
            log(f"  machine still {busy:.0f}% busy after waiting {max_wait:.0f}s; measuring anyway")
            return


def describe_source(source: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"commit {head}{' + uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


def scan_logs(log_dir: Path, limit: int = 30) -> list[str]:
    """Warnings, errors and exceptions in the service logs, counted by kind (ids and UUIDs blanked)."""
    counts: dict[str, int] = {}
    pattern = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|\[ERROR\]|\[CRITICAL\]|^[\w.]+(Error|Exception|Timeout)\b.*:|"
                         r"^unhandled error")
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if pattern.search(line):
                key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\b[0-9a-f]{12,32}\b", "…", line)
                key = re.sub(r"^\[?\d{4}-\d\d-\d\d[ T][\d:.,+ ]+\]?|\"ts\": \"[^\"]*\", ", "", key)
                key = f"{path.name}: {key.strip()[:240]}"
                counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [f"{n:5d} x {line}" for line, n in ranked[:limit]]


if __name__ == "__main__":
    # Run as the importable module, so the DIRECT helper processes (spawned) find the same code.
    from bench.ws_relay import main as _main

    sys.exit(_main())
