"""`GET /metrics`: Prometheus text format, for admins (Bearer token) only."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from web.admin.access import metrics_reader
from web.api.described import responds
from web.observability.metrics import render
from web.redis_client import get_redis

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@responds(200, media_type="text/plain", description="Prometheus text format (OpenMetrics when asked by Accept)")
@responds(200, media_type="application/openmetrics-text")
def metrics() -> Response:
    """Prometheus metrics of every web and worker process (an admin's token or a scrape token)."""
    metrics_reader()
    body, content_type = render(get_redis(), current_app.config["PARLEY_SETTINGS"], request.headers.get("Accept"))
    return Response(body, content_type=content_type)
