"""Fixtures: a real server (werkzeug, threaded) with real RQ workers, a fake upstream.

With DATABASE_URL and REDIS_URL set the tests use those services; otherwise SQLite in a
temporary directory and the in-process fakeredis (the embedded defaults).
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import websocket
from rq import Queue
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.fake_openai import FakeOpenAI
from tests.openapi_check import ResponseChecker
from web import create_app
from web.openapi import build_spec
from workers import runtime
from workers.pool import ThreadPool
from workers.queues import ALL
from workers.settings import Settings

REAL_SERVICES = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
_counter = itertools.count()


@pytest.fixture(scope="session")
def fake_upstream() -> FakeOpenAI:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def reset_upstream(fake_upstream: FakeOpenAI) -> None:
    """A healthy upstream, closed circuits and no cached model list."""
    fake_upstream.reset()
    redis = runtime.current().redis
    for key in redis.scan_iter(match="parley:breaker:*"):
        redis.delete(key)
    redis.delete("parley:models")


@pytest.fixture(autouse=True)
def _reset_upstream(fake_upstream: FakeOpenAI, app) -> None:
    """Each test starts with a healthy upstream, closed circuits and no cached model list."""
    reset_upstream(fake_upstream)


@pytest.fixture(scope="session")
def settings(fake_upstream: FakeOpenAI, tmp_path_factory) -> Settings:
    values: dict[str, Any] = dict(
        openai_api_key="test-key", openai_base_url=fake_upstream.base_url, secret_key="t" * 40,
        upstream_timeout_s=5.0, ws_idle_timeout_s=300.0, embedded_worker_threads=8,
        rate_limit="100000/minute",  # tests poll; the limit tests lower it
        allow_private_user_upstreams=True,  # users' keys point at the fake upstream on 127.0.0.1
        password_hash="scrypt:1024:8:1",  # 3 ms instead of 100 per hash: most tests register users
    )
    if REAL_SERVICES:
        values.update(database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
    else:
        values.update(database_url=f"sqlite:///{tmp_path_factory.mktemp('db') / 'parley.db'}", redis_url=None)
    return Settings(_env_file=None, **values)


def _reset_services(settings: Settings) -> None:
    """Start from an empty database and Redis, then migrate (embedded mode migrates itself)."""
    if not REAL_SERVICES:
        return
    rt = runtime.configure(settings)
    rt.redis.flushdb()
    with rt.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    rt.engine.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings):
    _reset_services(settings)
    app = create_app(settings)
    if REAL_SERVICES:
        from web.cli import upgrade_database

        upgrade_database(runtime.current().engine)
        pool = ThreadPool(runtime.current().redis, list(ALL), 8)
        pool.renew_connections()  # as `python -m workers` does: see ThreadPool.renew_connections
        app.extensions["embedded_pool"] = pool.start()
    return app


@pytest.fixture(scope="session")
def server(app) -> str:
    """The app served over real HTTP/WebSocket on a free port; yields its base URL."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


@pytest.fixture(scope="session", autouse=True)
def response_checker(app) -> ResponseChecker:
    checker = ResponseChecker(build_spec(app))
    Socket.checker = checker  # WebSocket frames are checked too
    return checker


@pytest.fixture
def api(server: str, response_checker: ResponseChecker) -> httpx.Client:
    """An HTTP client of the test server; every response it gets must match /openapi.json."""
    with httpx.Client(base_url=server, timeout=10.0, event_hooks={"response": [response_checker]}) as client:
        yield client


class Account(dict):
    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self['access_token']}"}


@pytest.fixture
def make_user(api: httpx.Client) -> Callable[..., Account]:
    def make(prefix: str = "user") -> Account:
        name = f"{prefix}{next(_counter)}_{uuid.uuid4().hex[:6]}"
        password = "correct horse battery"
        user = api.post("/api/v1/auth/register", json={"email": f"{name}@example.com", "username": name,
                                                       "password": password})
        assert user.status_code == 201, user.text
        tokens = api.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert tokens.status_code == 200, tokens.text
        return Account(**user.json(), **tokens.json(), password=password)

    return make


@pytest.fixture
def alice(make_user) -> Account:
    return make_user("alice")


@pytest.fixture
def make_chat(api: httpx.Client) -> Callable[..., dict]:
    def make(owner: Account, **fields: Any) -> dict:
        response = api.post("/api/v1/chat/chats", json={"title": "Test chat", **fields}, headers=owner.headers)
        assert response.status_code == 200, response.text
        return response.json()

    return make


class Socket:
    """A real WebSocket client that reads JSON events, each checked against its route's `x-events`."""

    checker: ResponseChecker | None = None

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.ws = websocket.create_connection(url, timeout=10, **kwargs)
        self.path = urlsplit(url).path

    def send(self, payload: dict) -> None:
        import json

        self.ws.send(json.dumps(payload))

    def next(self, timeout: float = 10.0) -> dict:
        import json

        self.ws.settimeout(timeout)
        event = json.loads(self.ws.recv())
        if self.checker is not None:
            self.checker.check_frame(self.path, event)
        return event

    def until(self, kind: str, timeout: float = 10.0) -> list[dict]:
        """Events up to and including the first of type `kind`."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.next(max(deadline - time.monotonic(), 0.01))
            seen.append(event)
            if event["type"] == kind:
                return seen
        raise AssertionError(f"no {kind} event within {timeout}s; saw {[e['type'] for e in seen]}")

    def close(self) -> None:
        self.ws.close()


def socket_opener(server: str, path: str) -> tuple[Callable[..., Socket], list[Socket]]:
    """A function opening WebSockets at `path` (with `{chat_id}`), and the list of those opened."""
    opened: list[Socket] = []

    def open_socket(chat_id: str | int, token: str | None = None, query: str = "", **kwargs: Any) -> Socket:
        ws_url = server.replace("http://", "ws://") + path.format(chat_id=chat_id)
        params = "&".join(p for p in (f"token={token}" if token else "", query) if p)
        sock = Socket(ws_url + (f"?{params}" if params else ""), **kwargs)
        opened.append(sock)
        return sock

    return open_socket, opened


def close_all(opened: list[Socket]) -> None:
    for sock in opened:
        try:
            sock.close()
        except Exception:
            pass


@pytest.fixture
def connect(server: str) -> Callable[..., Socket]:
    """Open a WebSocket on the chat API's /api/v1/chat/chats/{chat_id}/ws (closed after the test)."""
    open_socket, opened = socket_opener(server, "/api/v1/chat/chats/{chat_id}/ws")
    yield open_socket
    close_all(opened)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll `predicate` until it returns something true (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not met within {timeout}s")


@contextmanager
def enqueue_refused() -> Iterator[None]:
    """Redis itself refuses every enqueue while inside: the set of queue names, which RQ adds to
    before it stores a job, holds a string, so Redis answers WRONGTYPE (on fakeredis and real
    Redis). Workers never read that set: jobs already queued still run."""
    redis = runtime.current().redis
    names = redis.smembers(Queue.redis_queues_keys)
    redis.set(Queue.redis_queues_keys, "not a set")
    try:
        yield
    finally:
        redis.delete(Queue.redis_queues_keys)
        if names:
            redis.sadd(Queue.redis_queues_keys, *names)


def sent_while_deleting(table: Any, row_id: int, request: Callable[[], httpx.Response],
                        wait_s: float = 0.5) -> httpx.Response:
    """The response to `request`, sent while another transaction has deleted the row `row_id` of
    `table` but not yet committed; the deletion commits `wait_s` later. The request still reads
    the row, so its writes meet the deletion (it waits for it on both databases)."""
    return sent_while_writing(table.delete().where(table.c.id == row_id), request, wait_s)


def sent_while_writing(statement: Any, request: Callable[[], httpx.Response], wait_s: float = 0.5) -> httpx.Response:
    """The response to `request`, sent while another transaction has run `statement` (or a list of
    them, in order) but not yet committed; it commits `wait_s` later. The request still reads the
    rows as they were, so its writes meet the change (they wait for it on both databases)."""
    from concurrent.futures import ThreadPoolExecutor

    with runtime.session() as db, ThreadPoolExecutor(1) as pool:
        for each in statement if isinstance(statement, list) else [statement]:
            db.execute(each)
        sent = pool.submit(request)
        time.sleep(wait_s)
        db.commit()
        return sent.result()
