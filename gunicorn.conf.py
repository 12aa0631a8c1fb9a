"""gunicorn settings for the `web` process (read automatically from the working directory).

gevent: one process holds hundreds of open WebSockets and SSE streams, each a greenlet.
Logs are JSON lines (`workers.logs`); the app writes one access line per request, with its
request id. Metrics: prometheus-client's multiprocess mode, so `/metrics` on any worker
process sums all of them.
"""
import os
import shutil
import signal
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app logs each request itself ("parley.access": path without query, request id)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "workers.logs.JsonFormatter"}},
    "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},  # see accesslog
        **{name: {"level": "WARNING"} for name in ("httpx", "httpcore", "openai")},
    },
}

# Set before any worker imports prometheus_client; an operator's own directory wins.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                      os.path.join(tempfile.gettempdir(), f"parley-metrics-{os.environ.get('PORT', '8000')}"))


def on_starting(server):
    """Samples of a previous run would be summed in: start from an empty directory."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's gauges (open sockets) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    """psycopg2 blocks the whole process unless it yields to gevent while waiting."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()


def post_worker_init(worker):
    """On SIGTERM, besides gunicorn's graceful stop, close WebSockets with 1001 ("going away").

    Clients then reconnect (to another process) and resume from their last event id at
    once, instead of holding a socket to a process that is about to be killed.
    """
    import gevent

    from web.realtime.going_away import open_sockets

    def going_away(signum, frame):
        worker.handle_exit(signum, frame)
        gevent.spawn(open_sockets().close_all)

    signal.signal(signal.SIGTERM, going_away)
    signal.siginterrupt(signal.SIGTERM, False)
