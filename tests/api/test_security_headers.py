"""Security headers on every answer, and which answer headers a browser on another origin may read."""
from __future__ import annotations

ORIGIN = {"Origin": "http://localhost:3000"}


def test_api_answers_carry_the_security_headers(api, alice):
    for response in (api.get("/api/v1/auth/me", headers=alice.headers),
                     api.get("/api/v1/chat/chats/not-a-chat", headers=alice.headers),
                     api.get("/api/v1/auth/me")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_html_pages_may_load_their_own_scripts_but_not_be_framed(api):
    for path in ("/", "/docs"):
        page = api.get(path)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert page.headers["X-Frame-Options"] == "DENY"


def test_a_browser_on_another_origin_may_read_the_rate_limit_and_retry_headers(api, alice):
    response = api.get("/api/v1/chat/chats", headers={**alice.headers, **ORIGIN})
    assert response.status_code == 200
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
            "x-request-id", "x-session-id"} <= exposed
    assert "x-ratelimit-remaining" in {name.lower() for name in response.headers}
