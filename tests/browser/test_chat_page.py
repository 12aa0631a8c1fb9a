"""The chat page at `/`, driven in headless Chromium (Debian's chromium, no browser download)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

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
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-page.png"), full_page=True)
    last = wait_for(lambda: (m := api.get(f"/api/v1/chat/chats/{chat_id}", headers=headers).json()["messages"][-1])
                    ["status"] != "PROCESSING" and m)
    assert last["status"] == "CANCELLED" and last["content"] == page.locator("#messages li.ai span").last.text_content()
