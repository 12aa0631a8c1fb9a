"""rq-dashboard at `/admin/rq`, on the app's own Redis client, for signed-in admins only.

Registered at app level (nested under another blueprint its static URLs break) and guarded
by an app `before_request` on `request.blueprint == "rq_dashboard"`.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, g, redirect, request, url_for
from flask_jwt_extended.exceptions import CSRFError
from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer

from web.admin import access, pages
from workers.settings import Settings

URL_PREFIX = "/admin/rq"
BLUEPRINT = "rq_dashboard"


def mount(app: Flask, redis: Redis, settings: Settings) -> None:
    import rq_dashboard
    from rq_dashboard import web as dashboard

    dashboard.config.serializer = JSONSerializer  # Parley's jobs are JSON, not pickle
    dashboard.Worker = JsonWorker  # its worker list ignores that setting
    # Shown in its navbar (credentials masked); the connection itself is `redis` below.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (settings.redis_url or "fakeredis://embedded",)
    app.redis_conn = redis
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # rq-dashboard opens a new Redis client from the URL on every request, which cannot
    # reach the embedded fakeredis and wastes connections: keep the app's client instead.
    app.before_request_funcs[BLUEPRINT] = [
        f for f in app.before_request_funcs.get(BLUEPRINT, []) if f is not dashboard.push_rq_connection
    ] + [one_instance]
    app.before_request(guard)


class JsonWorker(Worker):
    """rq-dashboard lists workers with `Worker.all`, which reads their current jobs as pickle."""

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list:
        kwargs.setdefault("serializer", JSONSerializer)
        return super().all(*args, **kwargs)


def one_instance() -> None:
    """Parley has one Redis: rq-dashboard's instance 0."""
    if (request.view_args or {}).get("instance_number", 0) != 0:
        abort(404)


def guard() -> Response | None:
    """Admins only: no session → the login page (or 401), not an admin → 403, bad CSRF → 403."""
    if request.blueprint != BLUEPRINT:
        return None
    if request.method not in ("POST", "DELETE") and request.url_rule is not None and "POST" in request.url_rule.methods:
        abort(405)  # its "requeue all" also answers GET: state changes only by POST, under the CSRF check
    return refuse_unless_admin()


def refuse_unless_admin() -> Response | None:
    """None for a signed-in admin (then `g.admin`), else the response that refuses the request."""
    try:
        g.admin = access.admin_from_cookie()
    except access.NotSignedIn:
        if request.method in ("GET", "HEAD"):
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("admin.login_form", next=target))
        return Response(pages.refused_page("Your admin session has ended."), 401)
    except access.NotAdmin:
        return Response(pages.refused_page("This page is for administrators only."), 403)
    except CSRFError:
        return Response(pages.refused_page("The request was refused (CSRF check failed)."), 403)
    return None
