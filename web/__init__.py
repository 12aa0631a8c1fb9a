"""Parley's web tier: `create_app` builds the Flask app (the Flask CLI finds it)."""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import Flask

from web import admin, db, errors, limits, observability, request_checks, security_headers
from web.extensions import cors, jwt, sock
from web.logging_filters import install_token_redaction
from web.realtime import frame_budget
from web.realtime.hub import Hub
from web.realtime.presence import Presence
from workers import runtime
from workers.secrets import DEV_SECRET
from workers.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: read from the environment now)."""
    settings = settings or Settings()
    settings.check()
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(
        SECRET_KEY=settings.secret_key or DEV_SECRET,
        JWT_SECRET_KEY=settings.secret_key or DEV_SECRET,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=settings.refresh_token_days),
        JSON_SORT_KEYS=False,
        SOCK_SERVER_OPTIONS={"max_message_size": frame_budget.MAX_FRAME_BYTES},
        PARLEY_SETTINGS=settings,
    )
    app.json.sort_keys = False
    rt = runtime.configure(settings)
    if settings.embedded:
        from web.cli import upgrade_database

        upgrade_database(rt.engine)
    install_token_redaction()
    cors.init_app(app, origins=[o.strip() for o in settings.cors_origins.split(",")],
                  expose_headers=security_headers.EXPOSED_HEADERS, supports_credentials=False)
    jwt.init_app(app)
    sock.init_app(app)
    db.init_app(app)
    errors.init_app(app)
    observability.init_app(app)  # first: request id and timing cover every other hook
    request_checks.init_app(app, settings)  # before the blueprints: it brings the `int` converter
    limits.init_app(app, settings)
    security_headers.init_app(app)
    app.extensions["relay_hub"] = Hub(rt.redis)
    app.extensions["presence"] = Presence(rt.redis)

    from web.api.admin_users import bp as admin_users_bp
    from web.api.chat import bp as chat_bp
    from web.api.conversations import bp as conversations_bp
    from web.api.chats_v1 import bp as chats_v1_bp
    from web.api.models import bp as models_bp
    from web.api.rag import bp as rag_bp
    from web.api.sessions import bp as sessions_bp
    from web.api.users import bp as users_bp
    from web.auth.routes import bp as auth_bp
    from web.cli import register_commands
    from web.openapi import bp as openapi_bp
    from web.pages import bp as pages_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(chat_bp)
    app.register_blueprint(conversations_bp)
    app.register_blueprint(chats_v1_bp)
    app.register_blueprint(models_bp)
    app.register_blueprint(rag_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(users_bp)
    app.register_blueprint(admin_users_bp)
    admin.init_app(app, rt.redis, settings)
    register_commands(app)
    if settings.embedded:
        start_embedded_workers_on_first_request(app, settings)
    return app


def start_embedded_workers_on_first_request(app: Flask, settings: Settings) -> None:
    """Embedded mode runs RQ workers as threads of this process, started with the server."""
    lock = threading.Lock()

    @app.before_request
    def _start_workers() -> None:
        if app.extensions.get("embedded_pool") is not None:
            return
        with lock:
            if app.extensions.get("embedded_pool") is None:
                from workers.pool import ThreadPool
                from workers.queues import ALL

                logging.getLogger(__name__).info("embedded mode: starting %d worker threads",
                                                 settings.embedded_worker_threads)
                app.extensions["embedded_pool"] = ThreadPool(
                    runtime.current().redis, list(ALL), settings.embedded_worker_threads).start()
