"""Who may use the admin pages and `/metrics`.

Browsers: the admin's access token rides in an HttpOnly, SameSite=Lax cookie scoped to
`/admin/`, with flask-jwt-extended's double-submit CSRF check on every unsafe method (the
`_csrf_token` cookie echoed in an `X-CSRFToken` header, which rq-dashboard's own scripts
send, or in a `csrf_token` form field). Scrapers: `Authorization: Bearer` with an admin's
access token or a long-lived token of type "metrics" that opens nothing but `/metrics`.
"""
from __future__ import annotations

from datetime import timedelta

import jwt as pyjwt
from flask import Flask
from flask_jwt_extended import create_access_token, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException

from models import User
from web.auth import tokens
from web.errors import Forbidden, Unauthorized
from web.redis_client import get_redis
from workers.settings import Settings

COOKIE_PATH = "/admin/"
METRICS_TOKEN = "metrics"


class NotSignedIn(Exception):
    """No admin session cookie, or an expired, revoked or unreadable one."""


class NotAdmin(Exception):
    """A valid session of a user who is not an admin."""


def configure(app: Flask, settings: Settings) -> None:
    """Cookie settings of the admin session (the API itself never reads cookies)."""
    app.config.update(
        JWT_ACCESS_COOKIE_NAME="parley_admin",
        JWT_ACCESS_COOKIE_PATH=COOKIE_PATH,
        JWT_COOKIE_SAMESITE="Lax",
        JWT_COOKIE_SECURE=settings.production,  # production is served over HTTPS
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_CSRF_CHECK_FORM=True,
        # rq-dashboard's scripts read this cookie and send it back in this header.
        JWT_ACCESS_CSRF_COOKIE_NAME="_csrf_token",
        JWT_ACCESS_CSRF_COOKIE_PATH=COOKIE_PATH,
        JWT_ACCESS_CSRF_HEADER_NAME="X-CSRFToken",
    )


def admin_from_cookie() -> User:
    """The signed-in admin; raises NotSignedIn, NotAdmin or CSRFError."""
    try:
        verify_jwt_in_request(locations=["cookies"])
    except CSRFError:
        raise
    except (JWTExtendedException, pyjwt.PyJWTError) as exc:
        raise NotSignedIn(str(exc)) from None
    claims = get_jwt()
    if claims.get("type") != "access":  # flask-jwt-extended refuses only refresh tokens: not "metrics" ones
        raise NotSignedIn("not an access token")
    if tokens.is_revoked(get_redis(), claims["jti"]):
        raise NotSignedIn("revoked")
    try:
        user = tokens.user_from_claims(claims)
    except Unauthorized:
        raise NotSignedIn("no such user") from None
    if not user.is_admin:
        raise NotAdmin(user.username)
    return user


def metrics_reader() -> User:
    """The admin behind the request's Bearer token (an access or a "metrics" token)."""
    token = tokens.request_token()
    user = tokens.user_from_claims(tokens.verify(token, _token_type(token)))
    if not user.is_admin:
        raise Forbidden("Admins only")
    return user


def scrape_token(user: User, days: int) -> str:
    """A token for Prometheus: only `/metrics` accepts its type; revoked like any other."""
    return create_access_token(identity=str(user.id), expires_delta=timedelta(days=days),
                               additional_claims={"type": METRICS_TOKEN, "username": user.username})


def _token_type(token: str | None) -> str:
    """Which kind to verify the token as; the signature is checked by `tokens.verify`."""
    try:
        unverified = pyjwt.decode(token or "", options={"verify_signature": False})
    except pyjwt.PyJWTError:
        return "access"
    return METRICS_TOKEN if unverified.get("type") == METRICS_TOKEN else "access"
