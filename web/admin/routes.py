"""`/admin/login`, `/admin/` and `/admin/logout`, plus `flask admin scrape-token`."""
from __future__ import annotations

import click
from flask import Blueprint, Response, g, redirect, request, url_for
from flask_jwt_extended import create_access_token, get_jwt, set_access_cookies, unset_jwt_cookies
from flask_jwt_extended.exceptions import CSRFError
from sqlalchemy import func, select

from models import User
from web.admin import access, pages
from web.admin.dashboard import URL_PREFIX, refuse_unless_admin
from web.auth import tokens
from web.db import get_db
from web.errors import Unauthorized
from web.services import users
from workers import runtime

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/login")
def login_form() -> str:
    return pages.login_page(safe_next(request.args.get("next")))


@bp.post("/login")
def login() -> Response:
    """Check the form; an admin gets the session cookies and goes on to `next`."""
    next_url = safe_next(request.form.get("next"))
    try:
        user = users.check_credentials(get_db(), request.form.get("username", ""), request.form.get("password", ""))
    except Unauthorized:
        return Response(pages.login_page(next_url, "Incorrect username or password."), 401)
    if not user.is_admin:
        return Response(pages.login_page(next_url, "This account is not an administrator."), 403)
    response = redirect(next_url, 303)
    set_access_cookies(response, create_access_token(
        identity=str(user.id), additional_claims={"role": user.role, "username": user.username}))
    return response


@bp.get("/")
def home() -> Response | str:
    refusal = refuse_unless_admin()
    if refusal is not None:
        return refusal
    return pages.home_page(g.admin.username, request.cookies.get("_csrf_token", ""))


@bp.post("/logout")
def logout() -> Response:
    """Revoke the session's token (the form carries the CSRF token) and drop the cookies."""
    try:
        access.admin_from_cookie()
        tokens.revoke(get_jwt())
    except CSRFError:
        return Response(pages.refused_page("The request was refused (CSRF check failed)."), 403)
    except (access.NotSignedIn, access.NotAdmin):
        pass  # nothing valid to revoke: just drop the cookies
    response = redirect(url_for("admin.login_form"), 303)
    unset_jwt_cookies(response)
    return response


def safe_next(value: str | None) -> str:
    """Only our own admin pages are redirect targets (no open redirect)."""
    if value and value.startswith("/admin/") and not value.startswith("//"):
        return value
    return URL_PREFIX + "/"


@bp.cli.command("scrape-token")
@click.option("--username", required=True, help="an admin account")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 36500),  # else expired, or past 9999
              help="how long the token is valid")
def scrape_token_command(username: str, days: int) -> None:
    """Print a token that opens only /metrics, for Prometheus' `authorization` setting."""
    with runtime.session() as db:
        user = db.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))  # as login
        if user is None or not user.is_admin or not user.is_active:
            raise click.ClickException(f"{username} is not an active admin")
        click.echo(access.scrape_token(user, days))
