"""rq-dashboard in headless Chromium (Debian's chromium through Playwright, no browser download)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from rq.registry import FailedJobRegistry

from tests.admin.accounts import promote
from tests.conftest import wait_for
from workers import queues, runtime
from workers.pool import ThreadWorker

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def side_queue():
    """A queue no worker listens to, so its jobs stay where the test puts them."""
    q = queues.queue(f"admin-browser-{uuid.uuid4().hex[:6]}", runtime.current().redis)
    yield q
    q.delete(delete_jobs=True)


def sign_in(page, server: str, account: dict) -> None:
    page.goto(server + "/admin/rq/")
    assert "/admin/login" in page.url  # no session: sent to the login page
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    page.click("button[type=submit]")


def test_admin_signs_in_sees_a_queued_job_and_requeues_a_failed_one(browser, server, make_user, side_queue):
    admin = promote(make_user("admin"))
    failed = side_queue.enqueue("builtins.int", "not a number")
    ThreadWorker([side_queue], connection=side_queue.connection, serializer=side_queue.serializer).work(burst=True)
    queued = side_queue.enqueue_job(queues.reply_job(side_queue, 0, str(uuid.uuid4()), timeout_s=60))
    page = browser.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, server, admin)
    page.wait_for_url(server + "/admin/rq/")
    page.wait_for_selector(f"text={side_queue.name}")

    page.goto(f"{server}/admin/rq/0/view/jobs/{side_queue.name}/queued/8/asc/1")
    row = page.locator(f"tr[data-job-id='{queued.id}']")
    assert "workers.jobs.replies.generate_reply(0, False)" in row.inner_text()  # a JSON job, shown
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-rq-queued.png"), full_page=True)

    page.goto(f"{server}/admin/rq/0/view/jobs/{side_queue.name}/failed/8/asc/1")
    row = page.locator(f"tr[data-job-id='{failed.id}']")
    row.locator("[data-role=requeue-job-btn]").click()  # a POST carrying the CSRF cookie in X-CSRFToken
    wait_for(lambda: failed.id in side_queue.get_job_ids())
    assert failed.id not in FailedJobRegistry(queue=side_queue).get_job_ids()


def test_plain_user_is_refused(browser, server, make_user):
    user = make_user("plain")
    page = browser.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, server, user)
    page.wait_for_selector("text=not an administrator")
    assert page.context.cookies() == []
    response = page.goto(server + "/admin/rq/0/data/queues.json")
    assert "/admin/login" in page.url and response.ok  # still no session: the login page again
