"""The chat page at `/`, driven in headless Chromium (Debian's chromium, no browser download)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import wait_for
from workers import runtime

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LIVE = "document.querySelector('#connection').textContent === 'live'"
LAST_REPLY = "#messages li.ai:last-child"
UPSTREAM_FAILED = "The AI service failed while generating the reply."

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        page = browser.new_page()
        page.goto(server + "/")
        yield page
        browser.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def sign_in_to_new_chat(page, account, title: str) -> None:
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    page.click("#sign-in")
    page.wait_for_selector("#app:not([hidden])")
    page.fill("#new-title", title)
    page.click("#new-chat button")
    page.wait_for_function(LIVE)


def send(page, content: str) -> None:
    page.fill("#content", content)
    page.click("#send")


def wait_for_reply_meta(page, text: str) -> str:
    """Wait until the last reply's status line holds `text`; return that line."""
    page.wait_for_function(f"(document.querySelector('{LAST_REPLY} .meta')?.textContent || '').includes({text!r})")
    return page.locator(f"{LAST_REPLY} .meta").text_content()


def last_message(api, account) -> dict:
    chat_id = api.get("/api/v1/chat/chats", headers=account.headers).json()[0]["id"]
    return api.get(f"/api/v1/chat/chats/{chat_id}", headers=account.headers).json()["messages"][-1]


def test_sign_up_chat_stream_and_stop(page, api, fake_upstream):
    page.fill("#email", "browser@example.com")
    page.fill("#username", "browser")
    page.fill("#password", "a long password")
    page.click("#register")
    page.wait_for_selector("#app:not([hidden])")
    page.fill("#new-title", "Browser chat")
    page.click("#new-chat button")
    page.wait_for_function("document.querySelector('#connection').textContent === 'live'")

    fake_upstream.configure(tokens=40, delay_ms=30)
    page.fill("#content", "Hello from the browser")
    page.click("#send")
    reply = page.locator("#messages li.ai").last
    lengths = []
    for _ in range(40):
        lengths.append(len(reply.locator("span").text_content() or ""))
        if "t39" in (reply.locator("span").text_content() or ""):
            break
        page.wait_for_timeout(50)
    page.wait_for_function("(document.querySelector('#messages li.ai:last-child .meta')?.textContent || '').includes('tokens')")
    shown = reply.locator("span").text_content()
    assert shown == "".join(f"t{i} " for i in range(40))
    assert len({n for n in lengths if 0 < n < len(shown)}) >= 3, "the reply did not appear token by token"

    token = page.evaluate("localStorage.getItem('parley.token')")
    headers = {"Authorization": f"Bearer {token}"}
    chat_id = api.get("/api/v1/chat/chats", headers=headers).json()[0]["id"]
    stored = api.get(f"/api/v1/chat/chats/{chat_id}", headers=headers).json()["messages"][-1]
    assert stored["content"] == shown and stored["status"] == "DELIVERED"

    fake_upstream.configure(tokens=400, delay_ms=30)
    page.fill("#content", "Tell me a long story")
    page.click("#send")
    page.wait_for_function("(document.querySelector('#messages li.ai:last-child span')?.textContent || '').includes('t5 ')")
    page.click("#stop")
    page.wait_for_function("(document.querySelector('#messages li.ai:last-child .meta')?.textContent || '').includes('stopped')")
    screenshot(page, "chat-page.png")
    last = wait_for(lambda: (m := api.get(f"/api/v1/chat/chats/{chat_id}", headers=headers).json()["messages"][-1])
                    ["status"] != "PROCESSING" and m)
    assert last["status"] == "CANCELLED" and last["content"] == page.locator("#messages li.ai span").last.text_content()


def test_upstream_down_and_rate_limit_read_as_messages(page, api, make_user, fake_upstream, monkeypatch):
    account = make_user("errors")
    sign_in_to_new_chat(page, account, "Errors")
    settings = runtime.current().settings
    notice = page.locator("#notice")

    monkeypatch.setattr(settings, "openai_base_url", "http://127.0.0.1:9/v1")  # nothing listens: the upstream is down
    send(page, "Are you there?")
    assert wait_for_reply_meta(page, "failed").startswith(f"failed: {UPSTREAM_FAILED}")
    assert notice.is_visible() and notice.text_content() == UPSTREAM_FAILED
    assert last_message(api, account)["status"] == "FAILED"
    monkeypatch.setattr(settings, "openai_base_url", fake_upstream.base_url)

    monkeypatch.setattr(settings, "rate_limit", "2/minute")
    token = page.evaluate("localStorage.getItem('parley.token')")
    wait_for(lambda: api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 429,
             what="the user's requests are rate limited")
    send(page, "One more")
    page.wait_for_function("document.querySelector('#notice').textContent.startsWith('Too many requests')")
    assert re.fullmatch(r"Too many requests \(at most 2 per 1 minute\)\. Try again in \d+ s\.", notice.text_content())
    assert page.input_value("#content") == "One more", "the message to send again was lost"
    screenshot(page, "chat-page-errors.png")

    monkeypatch.setattr(settings, "rate_limit", "100000/minute")
    page.click("#send")
    page.wait_for_function("document.querySelectorAll('#messages li.ai').length === 2")
    assert "failed" not in wait_for_reply_meta(page, "tokens")
    stored = last_message(api, account)
    assert stored["status"] == "DELIVERED" and stored["content"] == page.locator(f"{LAST_REPLY} span").text_content()
