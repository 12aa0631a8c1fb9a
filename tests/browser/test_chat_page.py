"""The chat page at `/`, driven in headless Chromium (Debian's chromium, no browser download)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.browser.network import Network
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


@pytest.fixture
def network(server):
    network = Network(server)
    yield network
    network.close()


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


def test_reconnects_after_a_network_blip_without_losing_or_repeating_text(page, api, make_user, fake_upstream, network):
    account = make_user("blip")
    sockets: list[tuple[str, list[dict]]] = []  # each socket the page opened: its URL and the frames it got

    def watch(ws):
        frames: list[dict] = []
        sockets.append((ws.url, frames))
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", watch)
    page.goto(network.url + "/")
    sign_in_to_new_chat(page, account, "Blip")
    page.evaluate("""() => {  // every text the last reply shows, as it changes
      window.shown = [];
      new MutationObserver(() => {
        const reply = document.querySelector('#messages li.ai:last-child span');
        if (reply) window.shown.push(reply.textContent);
      }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
    }""")

    fake_upstream.configure(tokens=150, delay_ms=30)
    send(page, "Keep talking")
    page.wait_for_function(f"(document.querySelector('{LAST_REPLY} span')?.textContent || '').includes('t5 ')")
    with network.down():
        page.wait_for_function("document.querySelector('#connection').textContent === 'offline'")
        page.wait_for_timeout(1500)  # the reply streams on; the page's first reconnect fails
    page.wait_for_function(LIVE)
    wait_for_reply_meta(page, "tokens")
    screenshot(page, "chat-page-reconnected.png")

    stored = last_message(api, account)
    shown = page.locator(f"{LAST_REPLY} span").text_content()
    assert stored["status"] == "DELIVERED" and shown == stored["content"] == "".join(f"t{i} " for i in range(150))
    texts = page.evaluate("window.shown")
    assert all(stored["content"].startswith(text) for text in texts), "the page showed text the reply does not have"
    assert [len(t) for t in texts] == sorted(len(t) for t in texts), "the reply's text went back"

    used = [(url, frames) for url, frames in sockets if frames]
    assert len(used) >= 2 and "last_event_id=" in used[-1][0], "the page did not resume on a new socket"
    chunks = [[f["chunk"] for f in frames if f["type"] == "ai_response_chunk" and f["message_id"] == stored["id"]]
              for _, frames in used]
    assert chunks[0] and chunks[-1], "the blip did not fall within the reply"
    assert "".join(sum(chunks, [])) == stored["content"], "a token was lost or sent twice across the sockets"


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


def test_server_closes_reconnect_until_the_session_ends(page, api, make_user, fake_upstream, monkeypatch):
    """A socket closed as idle (4408) comes back, even mid-reply; a revoked access token is renewed;
    with the refresh token revoked too, the page signs out."""
    monkeypatch.setattr(runtime.current().settings, "ws_idle_timeout_s", 1.0)
    account = make_user("idle")
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    sign_in_to_new_chat(page, account, "Idle")
    page.wait_for_function("document.querySelector('#connection').textContent === 'offline'")
    page.wait_for_function(LIVE)

    fake_upstream.configure(tokens=60, delay_ms=50)  # three seconds: the socket closes and reopens on the way
    send(page, "Talk through the closes")
    wait_for_reply_meta(page, "tokens")
    stored = last_message(api, account)
    assert stored["content"] == page.locator(f"{LAST_REPLY} span").text_content() == "".join(f"t{i} " for i in range(60))
    assert page.locator("#notice").is_hidden()

    # A revoked access token alone is replaced with the refresh token: the page goes on.
    token = page.evaluate("localStorage.getItem('parley.token')")
    assert api.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.wait_for_function(f"localStorage.getItem('parley.token') !== {token!r}")
    page.wait_for_function(LIVE)
    assert page.locator("#app").is_visible() and page.locator("#notice").is_hidden()

    # Both revoked: the session is over.
    token, refresh = page.evaluate("[localStorage.getItem('parley.token'), localStorage.getItem('parley.refresh')]")
    assert api.post("/api/v1/auth/logout", json={"refresh_token": refresh},
                    headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.wait_for_selector("#auth:not([hidden])")
    assert page.locator("#notice").text_content() == "Your session has ended (Token has been revoked): sign in again."
    assert page.evaluate("localStorage.getItem('parley.refresh')") is None
    tries = len(opened)
    page.wait_for_timeout(2500)
    assert len(opened) == tries, "the page kept reconnecting with a revoked token"


def test_a_silent_connection_is_dropped_and_resumed(page, api, make_user, fake_upstream):
    """A socket that stops answering pings (held frames: Chromium's offline mode) is replaced, from the cursor."""
    account = make_user("silent")
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    page.clock.install()  # the page's heartbeat and back-off run on a clock the test moves
    page.reload()
    sign_in_to_new_chat(page, account, "Silent")

    page.context.set_offline(True)
    chat_id = api.get("/api/v1/chat/chats", headers=account.headers).json()[0]["id"]
    posted = api.post(f"/api/v1/chat/chats/{chat_id}/messages", json={"content": "Sent elsewhere"}, headers=account.headers)
    assert posted.status_code == 200
    page.clock.run_for(60_000)  # a ping, then another with no answer to the first
    assert page.text_content("#connection") != "live"
    page.context.set_offline(False)

    def resumed() -> bool:
        page.clock.run_for(1_000)
        return page.text_content("#connection") == "live" and page.locator("#messages li.ai").count() == 1
    wait_for(resumed, what="the page reconnects and shows what it missed")
    wait_for_reply_meta(page, "tokens")
    assert "last_event_id=" in opened[-1]
    assert page.locator("#messages li.user span").text_content() == "Sent elsewhere"
    assert page.locator(f"{LAST_REPLY} span").text_content() == last_message(api, account)["content"] == "".join(
        f"t{i} " for i in range(8))


def test_an_expired_access_token_is_renewed(page, api, app, make_user, fake_upstream):
    """An hour after signing in the access token has expired: the page gets another and carries on."""
    from datetime import timedelta

    from flask_jwt_extended import create_access_token

    account = make_user("later")
    sign_in_to_new_chat(page, account, "Later")
    with app.app_context():
        expired = create_access_token(identity=str(account["user_id"]), expires_delta=timedelta(seconds=-1))
    page.evaluate(f"localStorage.setItem('parley.token', {expired!r})")
    page.reload()
    page.wait_for_selector("#app:not([hidden])")
    page.click("#chats li")
    page.wait_for_function(LIVE)
    fake_upstream.configure(tokens=3)
    send(page, "Still here")
    wait_for_reply_meta(page, "tokens")
    assert page.evaluate("localStorage.getItem('parley.token')") != expired
    assert last_message(api, account)["content"] == "t0 t1 t2 "
