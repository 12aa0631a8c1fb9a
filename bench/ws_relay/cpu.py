"""CPU use per component from /proc, run-queue waits, and optional py-spy profiles."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.ws_relay.services import Services, log

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
            name = "worker" if name.startswith("worker") else name  # worker0, worker1, ...: one group
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
        targets = {name: proc.pid for name, proc in self.services.procs.items() if name.startswith("worker")}
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

