"""When Redis or the database cannot be reached, requests get a 503 a client may retry, not a 500."""
from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.conftest import REAL_SERVICES, wait_for
from tests.test_metrics_web_process import free_port, start_gunicorn
from web.errors import lost_connection

beside_own_redis = pytest.mark.skipif(not REAL_SERVICES or not shutil.which("redis-server"),
                                      reason="a web process on real services, beside a Redis server of its own")


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout == b"PONG\n",
             timeout=10, what="redis-server up")
    return process


def start_web(settings, database_url: str, redis_url: str) -> tuple[subprocess.Popen, str]:
    return start_gunicorn({"WEB_CONCURRENCY": "1", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                           "SECRET_KEY": settings.secret_key})


@pytest.fixture
def stopped():
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def unavailable(response: httpx.Response, service: str) -> str:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    return f"Service temporarily unavailable: {service} could not be reached; try again (request id " \
           f"{response.headers['X-Request-ID']})"


@beside_own_redis
def test_redis_down_is_a_503_until_it_is_back(settings, alice, stopped):
    redis_port = free_port()
    redis = start_redis(redis_port)
    stopped.append(redis)
    web, base = start_web(settings, settings.database_url, f"redis://127.0.0.1:{redis_port}/0")
    stopped.append(web)
    assert httpx.get(base + "/api/v1/auth/me", headers=alice.headers).status_code == 200

    redis.terminate()
    redis.wait()
    me = httpx.get(base + "/api/v1/auth/me", headers=alice.headers)
    assert me.json() == {"detail": unavailable(me, "Redis")}
    listed = httpx.get(base + "/chat/conversations", headers=alice.headers)  # 002 answers in its envelope
    assert listed.json() == {"success": False, "message": unavailable(listed, "Redis"), "data": None}

    stopped.append(start_redis(redis_port))
    assert httpx.get(base + "/api/v1/auth/me", headers=alice.headers).status_code == 200


@beside_own_redis
def test_an_unreachable_database_is_a_503(settings, alice, stopped):
    redis_port = free_port()
    stopped.append(start_redis(redis_port))
    web, base = start_web(settings, f"postgresql://postgres@127.0.0.1:{free_port()}/parley",
                          f"redis://127.0.0.1:{redis_port}/0")
    stopped.append(web)
    me = httpx.get(base + "/api/v1/auth/me", headers=alice.headers)
    assert me.json() == {"detail": unavailable(me, "the database")}


def operational_error(url: str, statement: str) -> OperationalError:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no OperationalError")


def test_only_a_lost_connection_is_an_outage(tmp_path):
    """SQLite reports SQL mistakes as OperationalError too: those stay 500s (bugs), not 503s."""
    assert not lost_connection(operational_error("sqlite://", "SELECT nope FROM nothing"))
    assert lost_connection(operational_error(f"sqlite:///{tmp_path}/missing/dir/parley.db", "SELECT 1"))
