"""Request ids, access logs and Prometheus metrics of the web tier (`/metrics`)."""
from __future__ import annotations

from flask import Flask

from web.observability import requests


def init_app(app: Flask) -> None:
    from web.observability.routes import bp

    requests.init_app(app)
    app.register_blueprint(bp)
