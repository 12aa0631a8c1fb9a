"""The processes the benchmark starts (fake upstream, gunicorn, RQ worker) and its database."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = ["-h", "127.0.0.1", "-U", "postgres"]
PG_URL = "postgresql://postgres@127.0.0.1:5432"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Services:
    """Subprocesses started by the benchmark, each in its own process group.

    Not in a session of their own: with the kernel's autogroup scheduling (on by default)
    every session is one scheduling group sharing the CPU equally with the others, and the
    workers' `nice` would only order them against their own threads.
    """

    def __init__(self, log_dir: Path, source: Path) -> None:
        self.log_dir = log_dir
        self.source = source
        self.procs: dict[str, subprocess.Popen] = {}
        self._stopped = False

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=self.source, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, process_group=0)
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
