"""The benchmark's command line and its run: set-up, then every (delay, N) cell."""
from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench.ws_relay as package
from bench.ws_relay.clients import Client, DirectClients, make_user, new_chats, relayed_phase
from bench.ws_relay.cpu import CpuMeter, Profiler, wait_quiet
from bench.ws_relay.phases import Phase, pct
from bench.ws_relay.report import CPU_HEADER, CPU_ORDER, HEADER, cpu_cells, markdown, ms, summary_row
from bench.ws_relay.services import (PG_URL, REPO, Services, describe_source, free_port, http_status, log,
                                     prepare_database, scan_logs, wait_for)

MILESTONES = ("new_message", "post_response", "ai_response_start")


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_relay", description=package.__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=parse_ints, default=[1, 50, 200], help="comma-separated N")
    parser.add_argument("--delays", type=parse_ints, default=[0, 20], help="comma-separated ms/token")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--worker-procs", type=int, default=2, help="RQ worker processes (`python -m workers`)")
    parser.add_argument("--worker-threads", type=int, default=100, help="threads of each RQ worker process")
    parser.add_argument("--worker-nice", type=int, default=10,
                        help="niceness of the RQ worker processes (0: same priority as the web tier)")
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
    return parser.parse_args(argv)


@dataclass
class Run:
    """What every cell needs: the services, where the web tier listens, the users, the clients."""

    args: argparse.Namespace
    services: Services
    host: str
    web_port: int
    users: list[Client]
    direct: DirectClients
    meter: CpuMeter
    expected: str


def export_ref(source: Path, ref: str, log_dir: Path) -> tuple[Path, str]:
    """A commit of `source` exported with `git archive` (its work tree left out)."""
    commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", ref], capture_output=True,
                            text=True, check=True).stdout.strip()
    export = log_dir / f"parley-{commit}"
    export.mkdir(exist_ok=True)
    archive = subprocess.run(["git", "-C", str(source), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(export)], input=archive.stdout, check=True)
    return export, f"commit {commit} (git archive {ref})"


def start_services(args: argparse.Namespace, services: Services, source: Path, host: str) -> int:
    """Database, Redis, fake upstream, gunicorn and the RQ workers; returns the web port."""
    import redis as redis_lib
    from rq import Worker

    fake_port, web_port = free_port(), free_port()
    fake_url = f"http://{host}:{fake_port}/v1"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG_URL}/{args.db}", REDIS_URL=args.redis_url, SECRET_KEY="bench-secret-" + "x" * 27,
        OPENAI_API_KEY="bench-key", OPENAI_BASE_URL=fake_url, PORT=str(web_port),
        RATE_LIMIT="1000000/minute",  # the per-user/IP limiter stays on, but setup is 400 requests from one IP
        PASSWORD_HASH="scrypt:1024:8:1",  # setup registers and logs in N users; no figure includes a login
        WEB_CONCURRENCY=str(args.web_workers), PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
    )
    env.pop("PRODUCTION", None)
    redis = redis_lib.Redis.from_url(args.redis_url)
    redis.flushdb()
    prepare_database(args.db, env, source)
    log(f"database {args.db} migrated; Redis {args.redis_url} flushed")
    services.start("fake", [sys.executable, "-m", "tests.fake_openai", "--host", host, "--port", str(fake_port),
                            "--tokens", str(args.tokens), "--delay-ms", "0"], env)
    services.start("web", ["gunicorn", "web:create_app()"], env)
    for i in range(args.worker_procs):
        services.start(f"worker{i}", ["nice", "-n", str(args.worker_nice), sys.executable, "-m", "workers",
                                      "--queues", "replies", "--threads", str(args.worker_threads)], env)
    wait_for("fake upstream", lambda: http_status(f"{fake_url}/models") == 200, services)
    wait_for("gunicorn", lambda: http_status(f"http://{host}:{web_port}/api/v1/chat/chats") == 401, services)
    threads = args.worker_procs * args.worker_threads
    wait_for("RQ worker threads", lambda: Worker.count(connection=redis) >= threads, services)
    args.fake_url = fake_url
    return web_port


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="parley-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    source = args.source.resolve()
    source_label = describe_source(source)
    if args.ref:
        source, source_label = export_ref(source, args.ref, log_dir)
    services = Services(log_dir, source)
    atexit.register(services.stop_all)

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    started = time.monotonic()
    try:
        log(f"logs in {log_dir}; Parley from {source} ({source_label})")
        host = "127.0.0.1"
        web_port = start_services(args, services, source, host)
        log(f"ready: gunicorn :{web_port} x{args.web_workers}, {args.worker_procs} worker processes "
            f"x{args.worker_threads} threads ({time.monotonic() - started:.1f}s)")
        run = prepare_run(args, services, host, web_port)
        rows, cpu_rows, raw = [], [], []
        for delay in args.delays:
            for n in args.clients:
                row, cpus, figures = measure_cell(run, delay, n)
                rows.append(row)
                cpu_rows.extend(cpus)
                raw.append(figures)
        print_report(args, source_label, rows, cpu_rows, log_dir)
        log(f"done in {time.monotonic() - started:.0f}s; logs in {log_dir}")
        if args.json:
            args.json.write_text(json.dumps(raw, indent=2))
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        services.stop_all()


def prepare_run(args: argparse.Namespace, services: Services, host: str, web_port: int) -> Run:
    """Users (untimed), the DIRECT helper processes, and one warm-up exchange of each kind."""
    max_n = max(args.clients)
    tag = uuid.uuid4().hex[:6]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        users = list(pool.map(lambda i: make_user(host, web_port, tag, i), range(max_n)))
    log(f"{max_n} users registered and logged in ({time.monotonic() - t0:.1f}s)")
    direct = DirectClients(args.direct_procs, args.fake_url, args.timeout)
    atexit.register(direct.close)
    expected = "".join(f"t{i} " for i in range(args.tokens))

    # Warm-up (not measured): pools, lazy threads (hub, stop watcher), both gunicorn workers.
    warm = [Client(u.user, u.token) for u in users[:min(8, max_n)]]
    new_chats(host, web_port, warm, "warm-up")
    warm_phase = Phase([relayed_phase(host, web_port, warm, args.tokens, 0, args.timeout)], {}, expected)
    Phase([direct.run(len(warm), args.tokens, 0)], {}, expected)
    if warm_phase.errors():
        log(f"warm-up errors: {warm_phase.errors()} {[s.error for s in warm_phase.streams if s.error][:3]}")

    meter = CpuMeter(services)
    load = meter.diff(meter.snapshot(), (time.sleep(2.0), meter.snapshot())[1])
    log(f"machine busy while idle (2 s): {load['machine']:.0f}% of {100 * os.cpu_count()}% "
        f"(web {load.get('web', 0):.0f}%, worker {load.get('worker', 0):.0f}%, "
        f"unrelated {load.get('unrelated', 0):.0f}%)"
        + (" -- something else is using the CPU; figures will be disturbed" if load["machine"] > 20 else ""))
    return Run(args, services, host, web_port, users, direct, meter, expected)


def measure_cell(run: Run, delay: int, n: int) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """DIRECT then RELAYED for N clients at D ms/token: the summary row, CPU rows and raw figures."""
    args, meter = run.args, run.meter
    run.services.check_alive()
    wait_quiet(meter, args.quiet_wait)
    rounds = args.single_rounds if n == 1 else 1
    batches = []
    for _ in range(rounds):
        batch = [Client(u.user, u.token) for u in run.users[:n]]
        new_chats(run.host, run.web_port, batch, f"bench d{delay} n{n}")
        batches.append(batch)
    time.sleep(0.5)

    a = meter.snapshot()
    direct = [run.direct.run(n, args.tokens, delay) for _ in range(rounds)]
    d = Phase(direct, meter.diff(a, meter.snapshot()), run.expected)
    time.sleep(0.5)

    profiler = Profiler(run.services, args.profile) if args.profile and n == max(args.clients) else None
    if profiler:
        profiler.start(f"d{delay}-n{n}")
    a = meter.snapshot()
    relayed = [relayed_phase(run.host, run.web_port, batch, args.tokens, delay, args.timeout) for batch in batches]
    b = meter.snapshot()
    if profiler:
        profiler.stop()
    r = Phase(relayed, meter.diff(a, b), run.expected)

    label = f"{n}" + (f" (x{rounds} in a row)" if rounds > 1 else "")
    # What N streams deliver if nothing but the upstream's pacing mattered (rounds run one after another).
    ideal = n * args.tokens / ((args.tokens - 1) * delay / 1000) if delay else 0.0
    row = summary_row(delay, label, d, r, ideal)
    cpu_rows = [[str(delay), label, "direct", f"{d.wall():.2f}"] + cpu_cells(d.cpu),
                [str(delay), label, "relayed", f"{r.wall():.2f}"] + cpu_cells(r.cpu)]
    log_cell(delay, label, row, d, r)
    figures = {"delay_ms": delay, "clients": n, "rounds": rounds, "ideal_tokens_per_s": ideal,
               **raw_figures("direct", d), **raw_figures("relayed", r)}
    return row, cpu_rows, figures


def log_cell(delay: int, label: str, row: list[str], d: Phase, r: Phase) -> None:
    log(f"delay={delay} N={label}: " + "; ".join(f"{h}: {v}" for h, v in zip(HEADER[2:], row[2:])))
    log("  relayed milestones p50/p99 ms after the POST was sent: " + ", ".join(
        f"{name} {ms(r.mark(name))}/{ms(r.mark(name, 99))}" for name in MILESTONES))
    log(f"  reply duration (first to last token) p50 ms: direct {ms(d.duration())}, relayed {ms(r.duration())}")
    legs, legs99 = r.legs(), r.legs(99)
    log("  relayed first token, p50/p99 ms: send -> ai_response_start appended "
        f"{ms(legs['send_to_start'])}/{ms(legs99['send_to_start'])}, -> first chunk appended "
        f"{ms(legs['start_to_chunk'])}/{ms(legs99['start_to_chunk'])}, -> on the socket "
        f"{ms(legs['relay_hop'])}/{ms(legs99['relay_hop'])}")
    log("  CPU %: " + ", ".join(f"{k} {d.cpu.get(k, 0):.0f}/{r.cpu.get(k, 0):.0f}" for k in CPU_ORDER)
        + " (direct/relayed)" + "".join(f"; unrelated: {p.cpu['unrelated_names']}" for p in (d, r)
                                        if p.cpu.get("unrelated_names")))
    if r.multi_token_events() or d.multi_token_events():
        log(f"  events holding >1 token: direct {d.multi_token_events()}, relayed {r.multi_token_events()}")
    for kind, phase in (("direct", d), ("relayed", r)):
        bad = [s.error for s in phase.streams if s.error]
        if bad:
            log(f"  {kind} errors (first 3): {bad[:3]}")


def raw_figures(kind: str, phase: Phase) -> dict[str, Any]:
    figures = {
        "ttft_p50_ms": pct(phase.ttft(), 50) * 1000, "ttft_p99_ms": pct(phase.ttft(), 99) * 1000,
        "itl_p50_ms": pct(phase.itl(), 50) * 1000, "itl_p99_ms": pct(phase.itl(), 99) * 1000,
        "tokens": phase.tokens(), "wall_s": phase.wall(), "tokens_per_s": phase.rate(),
        "errors": phase.errors(), "cpu_pct": phase.cpu, "duration_p50_ms": phase.duration() * 1000,
        "stream_pace_p50_tokens_per_s": pct(phase.stream_rates(), 50),
        "multi_token_events": phase.multi_token_events(),
        **{f"{m}_p50_ms": phase.mark(m) * 1000 for m in MILESTONES},
        **{f"first_token_{leg}_p50_ms": v * 1000 for leg, v in phase.legs().items()},
    }
    return {f"{kind}_{k}": v for k, v in figures.items()}


def print_report(args: argparse.Namespace, source_label: str, rows: list[list[str]], cpu_rows: list[list[str]],
                 log_dir: Path) -> None:
    print()
    print(f"## Relay vs direct: Parley {source_label}; {args.tokens} tokens/reply, {args.web_workers} gunicorn "
          f"workers, {args.worker_procs} worker processes x {args.worker_threads} threads (nice {args.worker_nice}); ITL per token (chunk "
          f"events spread over their tokens)")
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
