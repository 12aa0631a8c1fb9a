"""Security headers on every response, and the response headers a browser on another origin may read.

- `X-Content-Type-Options: nosniff`: a browser never runs an answer as another type than it says.
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no page may frame ours (clickjacking).
- `Referrer-Policy: no-referrer`: the SSE surfaces take a token in the URL (`?auth_token=`), which
  must never leave in a `Referer` header.
- API answers (anything but HTML) get `Content-Security-Policy: default-src 'none'`: opened in a
  browser, they load nothing and run nothing. The HTML pages (the chat page, `/docs`, the admin
  pages and rq-dashboard) load their own scripts and styles, so they keep only `frame-ancestors`.
"""
from __future__ import annotations

from flask import Flask, Response

EXPOSED_HEADERS = ["X-Session-Id", "X-Request-ID", "Retry-After",
                   "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
FIXED = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY = "frame-ancestors 'none'"


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    for name, value in FIXED.items():
        response.headers.setdefault(name, value)
    policy = PAGE_POLICY if response.mimetype == "text/html" else API_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    return response
