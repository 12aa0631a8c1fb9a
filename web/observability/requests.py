"""Per request: a request id (honouring `X-Request-ID`), an access log line and metrics.

The request id is bound for the request's log lines and copied into the jobs it enqueues
(`workers.logs`), and returned as the `X-Request-ID` response header.
"""
from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from prometheus_client import Gauge

from web.observability.metrics import web_metrics
from workers.logs import new_request_id, request_id_var, stamp_records

access_log = logging.getLogger("parley.access")

HEADER = "X-Request-ID"


def init_app(app: Flask) -> None:
    """Register first, so the id and the clock cover every other hook."""
    stamp_records()
    app.before_request(begin)
    app.after_request(finish)
    app.teardown_request(unbind)


def begin() -> None:
    g.request_id = new_request_id(request.headers.get(HEADER))
    g.request_id_token = request_id_var.set(g.request_id)
    g.request_started = time.perf_counter()


def finish(response: Response) -> Response:
    """Count and log the request; WebSockets end here when they close, SSE when headers go."""
    if "request_id" not in g:  # another hook answered before ours ran
        return response
    elapsed = time.perf_counter() - g.request_started
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    websocket = request.environ.get("HTTP_UPGRADE", "").lower() == "websocket"
    metrics = web_metrics()
    metrics.requests.labels(request.method, route, str(response.status_code)).inc()
    if not websocket:
        metrics.latency.labels(request.method, route).observe(elapsed)
    if response.is_streamed and response.mimetype == "text/event-stream":
        count_open_stream(response, metrics.sse_streams)
    response.headers[HEADER] = g.request_id
    fields = {"method": request.method, "path": request.path, "route": route, "status": response.status_code,
              "remote": request.remote_addr,
              "duration_ms": round(elapsed * 1000, 1)}
    if websocket:
        fields["websocket"] = True
    access_log.info("%s %s %s", request.method, request.path, response.status_code, extra=fields)
    return response


def count_open_stream(response: Response, gauge: Gauge) -> None:
    """+1 until the server closes the response (once, however often close is called)."""
    gauge.inc()
    closed: list[bool] = []

    def done() -> None:
        if not closed:
            closed.append(True)
            gauge.dec()

    response.call_on_close(done)


def unbind(_exc: BaseException | None = None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id_var.reset(token)
