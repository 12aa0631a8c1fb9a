"""The web process's Prometheus metrics and the `/metrics` exposition.

Under gunicorn every worker process writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode, set up by
`gunicorn.conf.py`) and a scrape answered by any of them sums all of them. Without that
directory (embedded mode, tests) a process serves its own samples. Cluster-wide figures
(queues, breakers, replies) come from Redis at scrape time (`cluster.py`).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis

from web.observability.cluster import ClusterCollector
from workers.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class WebMetrics:
    requests: Counter
    latency: Histogram
    websockets: Gauge
    sse_streams: Gauge

    def collectors(self) -> tuple:
        return (self.requests, self.latency, self.websockets, self.sse_streams)


_metrics: WebMetrics | None = None
_lock = threading.Lock()


def web_metrics() -> WebMetrics:
    """This process's metrics, created on first use (after gunicorn has forked)."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _create()
    return _metrics


def _create() -> WebMetrics:
    disable_created_metrics()  # `*_created` series only double the output
    registry = CollectorRegistry()  # private: the scrape builds its own registry
    return WebMetrics(
        requests=Counter("parley_http_requests", "HTTP requests by route (URL rule) and status",
                         ["method", "route", "status"], registry=registry),
        latency=Histogram("parley_http_request_duration_seconds",
                          "Time to the response headers by route (WebSockets excluded)",
                          ["method", "route"], registry=registry),
        websockets=Gauge("parley_open_websockets", "WebSockets open now",
                         multiprocess_mode="livesum", registry=registry),
        sse_streams=Gauge("parley_open_sse_streams", "SSE streams open now",
                          multiprocess_mode="livesum", registry=registry),
    )


def render(redis: Redis, settings: Settings, accept: str | None) -> tuple[bytes, str]:
    """The exposition in the format the scraper accepts (Prometheus text 0.0.4 by default)."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        for collector in web_metrics().collectors():
            registry.register(collector)
    registry.register(ClusterCollector(redis, settings))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
