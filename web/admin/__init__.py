"""Admin pages: a sign-in form, rq-dashboard at `/admin/rq`, and who may read `/metrics`."""
from __future__ import annotations

from flask import Flask
from redis import Redis

from web.admin import access, dashboard
from workers.settings import Settings


def init_app(app: Flask, redis: Redis, settings: Settings) -> None:
    from web.admin.routes import bp

    access.configure(app, settings)
    app.register_blueprint(bp)
    dashboard.mount(app, redis, settings)
