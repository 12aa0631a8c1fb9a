"""rq-dashboard at /admin/rq: admins only, Parley's queues and jobs, CSRF on every change."""
from __future__ import annotations

import json
import uuid

import pytest
from flask_jwt_extended import create_access_token
from rq.registry import FailedJobRegistry

from tests.admin.accounts import promote, sign_in
from tests.conftest import wait_for
from workers import queues, runtime
from workers.pool import ThreadWorker


@pytest.fixture
def admin(make_user):
    return promote(make_user("admin"))


@pytest.fixture
def admin_client(server, admin):
    client = sign_in(server, admin)
    yield client
    client.close()


def test_anonymous_browser_is_sent_to_the_login_page(api):
    for path in ("/admin/rq/", "/admin/rq/0/data/queues.json", "/admin/"):
        assert api.get(path).status_code == 302, path
    response = api.get("/admin/rq/")
    assert response.headers["location"] == "/admin/login?next=/admin/rq/"
    login = api.get(response.headers["location"])
    assert login.status_code == 200 and '<form method="post"' in login.text and 'name="password"' in login.text
    assert api.post("/admin/rq/job/x/requeue").status_code == 401


def test_login_sets_httponly_samesite_cookies(server, admin):
    response = httpx_login(server, admin)
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session = cookies["parley_admin"]
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/admin/" in session
    csrf = cookies["_csrf_token"]
    assert "HttpOnly" not in csrf and "Path=/admin/" in csrf  # the dashboard's script reads it
    assert response.headers["location"] == "/admin/rq/"


def httpx_login(server, account, next_url="/admin/rq/"):
    import httpx

    return httpx.post(server + "/admin/login", data={"username": account["username"], "password": account["password"],
                                                     "next": next_url})


def test_admin_sees_the_dashboard_and_parley_queues(admin_client, api, alice, make_chat, fake_upstream):
    fake_upstream.configure(tokens=30, delay_ms=30)
    chat = make_chat(alice)
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hi"}, headers=alice.headers)
    history = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers).json()["messages"]
    reply_job_id = queues.reply_job_id([m for m in history if m["message_type"] == "AI"][-1]["id"])
    queues.enqueue_document(runtime.current().redis, 0, str(uuid.uuid4()), timeout_s=60)  # no such document: skipped

    page = admin_client.get("/admin/rq/")
    assert page.status_code == 200 and "RQ dashboard" in page.text
    assert admin_client.get("/admin/rq/static/js/jquery-3.5.1.min.js").status_code == 200
    listed = admin_client.get("/admin/rq/0/data/queues.json").json()["queues"]
    assert {"replies", "documents"} <= {q["name"] for q in listed}

    def busy_workers():
        response = admin_client.get("/admin/rq/0/data/workers.json")
        assert response.status_code == 200  # a busy worker's current job is read as JSON too
        return [w for w in response.json()["workers"] if w["current_job"] != "idle"]

    wait_for(lambda: reply_job_id in {w["current_job"]["job_id"] for w in busy_workers()})

    finished = wait_for(lambda: [j for j in admin_client.get(
        "/admin/rq/0/data/jobs/replies/finished/100/dsc/1.json").json()["jobs"] if j["id"] == reply_job_id])
    assert finished[0]["description"].startswith("workers.jobs.replies.generate_reply(")
    detail = admin_client.get(f"/admin/rq/0/data/job/{reply_job_id}.json")
    assert detail.status_code == 200 and detail.json()["status"] == "finished"  # read with the JSON serializer
    # Jobs carry ids only: no token, password or key in what the dashboard shows.
    shown = json.dumps([finished, detail.json()])
    for secret in (alice["access_token"], alice["refresh_token"], alice["password"], "test-key"):
        assert secret not in shown


def test_failed_job_is_inspected_and_requeued_with_csrf(admin_client):
    redis = runtime.current().redis
    q = queues.queue(f"admin-test-{uuid.uuid4().hex[:6]}", redis)
    try:
        job = q.enqueue("builtins.int", "not a number")
        ThreadWorker([q], connection=redis, serializer=q.serializer).work(burst=True)
        assert job.id in FailedJobRegistry(queue=q).get_job_ids()
        failed = admin_client.get(f"/admin/rq/0/data/jobs/{q.name}/failed/8/asc/1.json").json()["jobs"]
        assert [j["id"] for j in failed] == [job.id] and "ValueError" in failed[0]["exc_info"]

        url = f"/admin/rq/job/{job.id}/requeue"
        assert admin_client.post(url).status_code == 403  # no CSRF header
        assert admin_client.post(url, headers={"X-CSRFToken": "wrong"}).status_code == 403
        csrf = admin_client.cookies["_csrf_token"]
        assert admin_client.post(url, headers={"X-CSRFToken": csrf}).json() == {"status": "OK"}
        assert q.get_job_ids() == [job.id] and job.id not in FailedJobRegistry(queue=q).get_job_ids()
        assert admin_client.get(f"/admin/rq/requeue/{q.name}").status_code == 405  # GET never changes state
    finally:
        q.delete(delete_jobs=True)


def test_plain_user_is_refused(server, api, app, alice):
    refused = httpx_login(server, alice)
    assert refused.status_code == 403 and "not an administrator" in refused.text
    assert "set-cookie" not in refused.headers
    with app.app_context():  # a session cookie of a non-admin (say, one demoted since)
        token = create_access_token(identity=str(alice["user_id"]))
    for path in ("/admin/rq/", "/admin/rq/0/data/queues.json", "/admin/"):
        response = api.get(path, headers={"Cookie": f"parley_admin={token}"})
        assert response.status_code == 403, path
    assert api.get("/admin/rq/", headers={"Authorization": f"Bearer {alice['access_token']}"}).status_code == 302


def test_logout_revokes_the_session(admin_client):
    home = admin_client.get("/admin/")
    assert home.status_code == 200 and "Sign out" in home.text
    token = admin_client.cookies["parley_admin"]
    assert admin_client.post("/admin/logout").status_code == 403  # the form carries the CSRF token
    out = admin_client.post("/admin/logout", data={"csrf_token": admin_client.cookies["_csrf_token"]})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert "parley_admin" not in admin_client.cookies
    again = admin_client.get("/admin/rq/", headers={"Cookie": f"parley_admin={token}"})
    assert again.status_code == 302  # the old token is revoked


def test_wrong_password_and_open_redirect(server, api, admin):
    wrong = api.post("/admin/login", data={"username": admin["username"], "password": "nope"})
    assert wrong.status_code == 401 and "Incorrect" in wrong.text
    evil = httpx_login(server, admin, next_url="https://evil.example/")
    assert evil.status_code == 303 and evil.headers["location"] == "/admin/rq/"


def test_a_metrics_scrape_token_does_not_open_the_dashboard(api, app, admin):
    """A "metrics" token opens /metrics only, also when sent as the admin session cookie."""
    token = app.test_cli_runner().invoke(args=["admin", "scrape-token", "--username", admin["username"]]).output.strip()
    assert api.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for path in ("/admin/rq/", "/admin/rq/0/data/queues.json", "/admin/"):
        response = api.get(path, headers={"Cookie": f"parley_admin={token}"})
        assert response.status_code == 302, path  # not a session: the login page
