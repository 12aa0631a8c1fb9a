"""gunicorn settings for the `web` process (read automatically from the working directory).

gevent: one process holds hundreds of open WebSockets and SSE streams, each a greenlet.
"""
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# %(U)s is the path without the query string: WebSocket and SSE tokens ride in the query.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


def post_fork(server, worker):
    """psycopg2 blocks the whole process unless it yields to gevent while waiting."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
