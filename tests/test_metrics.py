"""/metrics: Prometheus text for admins, with web, queue, breaker and reply figures."""
from __future__ import annotations

import time

import pytest
from httpx_sse import connect_sse
from prometheus_client.parser import text_string_to_metric_families

from tests.admin.accounts import promote
from tests.conftest import wait_for
from web.observability import metrics as web_metrics_module
from workers import metrics as reply_metrics
from workers import runtime, upstream


@pytest.fixture(autouse=True)
def fresh_web_metrics(monkeypatch):
    """This test's own web metrics: sockets and streams of earlier tests may close at any time."""
    monkeypatch.setattr(web_metrics_module, "_metrics", web_metrics_module._create())


@pytest.fixture
def admin(make_user):
    return promote(make_user("ops"))


def scrape(api, admin) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    response = api.get("/metrics", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_admins_only(api, alice, admin, app):
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers=alice.headers).status_code == 403
    assert api.get("/metrics", headers=admin.headers).status_code == 200
    token = app.test_cli_runner().invoke(  # the name in any case, as login takes it
        args=["admin", "scrape-token", "--username", admin["username"].upper()]).output.strip()
    assert api.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401  # /metrics only
    refused = app.test_cli_runner().invoke(args=["admin", "scrape-token", "--username", alice["username"]])
    assert refused.exit_code != 0 and "not an active admin" in refused.output


def test_scrape_token_command_refuses_a_token_that_would_never_work(app, admin):
    """`--days 0` or below printed a token already expired (Prometheus got 401s); a huge one was a traceback."""
    runner = app.test_cli_runner()
    for days in ("0", "-5", "100000000"):
        refused = runner.invoke(args=["admin", "scrape-token", "--username", admin["username"], "--days", days])
        assert refused.exit_code == 2 and "--days" in refused.output, refused.output
        assert refused.exception is None or isinstance(refused.exception, SystemExit)


def test_requests_replies_sockets_and_upstreams(api, alice, admin, make_chat, connect, fake_upstream):
    before = scrape(api, admin)
    fake_upstream.configure(tokens=12, delay_ms=10)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.until("welcome")
    during = scrape(api, admin)
    assert value(during, "parley_open_websockets") == value(before, "parley_open_websockets") + 1
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "Hello"}, headers=alice.headers)
    ws.until("ai_response_complete")
    ws.close()

    after = wait_for(lambda: (s := scrape(api, admin)) and value(s, "parley_open_websockets") == value(
        before, "parley_open_websockets") and value(s, "parley_replies_total", outcome="completed") > value(
        before, "parley_replies_total", outcome="completed") and s)
    route = "/api/v1/chat/chats/<chat_id>/messages"  # the URL rule, not the path with its id
    assert value(after, "parley_http_requests_total", method="POST", route=route, status="200") == value(
        before, "parley_http_requests_total", method="POST", route=route, status="200") + 1
    assert value(after, "parley_http_request_duration_seconds_count", method="POST", route=route) >= 1
    assert not any(chat["id"] in dict(labels).get("route", "") for _, labels in after)
    for outcome in ("started", "completed"):
        assert value(after, "parley_replies_total", outcome=outcome) >= value(
            before, "parley_replies_total", outcome=outcome) + 1
    assert value(after, "parley_reply_time_to_first_token_seconds_count") >= value(
        before, "parley_reply_time_to_first_token_seconds_count") + 1
    assert value(after, "parley_reply_tokens_per_second_count") >= value(
        before, "parley_reply_tokens_per_second_count") + 1
    assert value(after, "parley_upstream_calls_total", upstream="primary", outcome="ok") >= value(
        before, "parley_upstream_calls_total", upstream="primary", outcome="ok") + 1
    for queue in ("replies", "documents"):
        assert (("parley_queue_jobs", (("queue", queue), ("state", "queued")))) in after
        assert value(after, "parley_rq_workers", queue=queue) >= 1
    assert value(after, "parley_circuit_breaker_state", upstream="primary", state="CLOSED") == 1


def test_failed_and_cancelled_replies_and_an_open_circuit(api, alice, admin, make_chat, fake_upstream):
    before = scrape(api, admin)
    fake_upstream.configure(fail_status=500)
    chat = make_chat(alice)
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "Hello"}, headers=alice.headers)
    wait_for(lambda: value(scrape(api, admin), "parley_replies_total", outcome="failed") > value(
        before, "parley_replies_total", outcome="failed"))
    after = scrape(api, admin)
    assert value(after, "parley_upstream_calls_total", upstream="primary", outcome="error") > value(
        before, "parley_upstream_calls_total", upstream="primary", outcome="error")

    fake_upstream.reset()
    fake_upstream.configure(tokens=200, delay_ms=30)
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "Go on"}, headers=alice.headers)
    history = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()["messages"]
    reply = history[-1]["id"]
    wait_for(lambda: value(scrape(api, admin), "parley_replies_total", outcome="started") > value(
        after, "parley_replies_total", outcome="started"))
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages/{reply}/stop", headers=alice.headers)
    wait_for(lambda: value(scrape(api, admin), "parley_replies_total", outcome="cancelled") > value(
        after, "parley_replies_total", outcome="cancelled"))

    settings = runtime.current().settings
    breaker = upstream.breaker(runtime.current().redis, settings, upstream.PRIMARY)
    for _ in range(settings.breaker_failure_threshold):
        breaker.record_failure()
    opened = scrape(api, admin)
    assert value(opened, "parley_circuit_breaker_state", upstream="primary", state="OPEN") == 1
    assert value(opened, "parley_circuit_breaker_state", upstream="primary", state="CLOSED") == 0


def test_open_sse_streams(api, alice, admin, fake_upstream):
    fake_upstream.configure(tokens=400, delay_ms=25)
    base = value(scrape(api, admin), "parley_open_sse_streams")
    with connect_sse(api, "POST", "/v1/chat/stream", headers=alice.headers,
                     json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}) as sse:
        first = next(sse.iter_sse())
        assert first.data.startswith("t0"), first  # streaming, so the stream is open
        wait_for(lambda: value(scrape(api, admin), "parley_open_sse_streams") == base + 1, timeout=3)
    wait_for(lambda: value(scrape(api, admin), "parley_open_sse_streams") == base)  # gone with its client


def test_worker_histograms_are_cumulative():
    redis = runtime.current().redis

    class Run:
        content, finished, started_at = "x", False, time.monotonic() - 0.3

    before = reply_metrics.snapshot(redis)
    run = Run()
    reply_metrics.reply_started(redis, run)
    assert run in reply_metrics.in_flight()
    reply_metrics.first_token(run)
    reply_metrics.reply_ended(redis, run, "DELIVERED", 10)
    after = reply_metrics.snapshot(redis)
    assert run not in reply_metrics.in_flight()
    assert after.ttft.count == before.ttft.count + 1 and after.ttft.total >= before.ttft.total + 0.3
    buckets = dict(after.ttft.cumulative())
    assert buckets["0.25"] == dict(before.ttft.cumulative())["0.25"]  # 0.3 s lands above 0.25...
    assert buckets["0.5"] == dict(before.ttft.cumulative())["0.5"] + 1  # ...and in 0.5
    assert buckets["+Inf"] == after.ttft.count
