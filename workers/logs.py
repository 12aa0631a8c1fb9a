"""Structured logs: one JSON object a line, with the request id that follows a reply.

Both tiers use it (workers never import `web`): the web process binds the request id of
each request, `workers.queues` copies it into the meta of every job the request enqueues,
and a worker binds it again while it runs that job, so `grep <request id>` follows one
reply from the HTTP request to the worker that streamed it.

Secrets are scrubbed from every line: tokens in query strings, `Bearer` credentials, JWTs,
OpenAI-style keys and `password`/`api_key` values, in the message and in tracebacks.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Iterator

from rq import Queue

request_id_var: ContextVar[str | None] = ContextVar("parley_request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("parley_job_id", default=None)

# An incoming X-Request-ID is honoured only in this shape: it is echoed and logged.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

SECRETS = (
    (re.compile(r"((?:^|[?&\s])(?:token|auth_token|access_token|refresh_token|jwt|api_key|apikey|key)=)[^&\s\"']+",
                re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
    # A password in a URL's user info (redis://:pw@host, postgresql://user:pw@host).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]+(@)", re.IGNORECASE), r"\1[redacted]\2"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "[redacted-key]"),
    (re.compile(r"""(["']?(?:password|passwd|secret|api_key|apikey|authorization)["']?\s*[:=]\s*["']?)[^"',\s}]+""",
                re.IGNORECASE), r"\1[redacted]"),
)

# Where `stamp_records` keeps the ids on a record (RQ passes its own `job_id` as `extra`).
STAMPED = {"request_id": "parley_request_id", "job_id": "parley_job_id"}

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def scrub(text: str) -> str:
    """`text` with every credential we can recognise replaced."""
    for pattern, replacement in SECRETS:
        text = pattern.sub(replacement, text)
    return text


def error_text(exc: BaseException, limit: int = 300) -> str:
    """`Class: message` of an error, for a user to read: credentials scrubbed (before cutting, so
    no secret is cut past recognition), on one line, at most `limit` characters."""
    text = scrub(" ".join(f"{type(exc).__name__}: {exc}".split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def new_request_id(incoming: str | None = None) -> str:
    """The client's X-Request-ID when it is a sane one, otherwise a fresh id."""
    if incoming and REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def bound(request_id: str | None = None, job_id: str | None = None) -> Iterator[None]:
    """Log lines (and jobs enqueued) inside the block carry these ids."""
    tokens = (request_id_var.set(request_id), job_id_var.set(job_id))
    try:
        yield
    finally:
        job_id_var.reset(tokens[1])
        request_id_var.reset(tokens[0])


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "request_id", "job_id", ...extra, "exc"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, var in (("request_id", request_id_var), ("job_id", job_id_var)):
            value = getattr(record, STAMPED[key], None) or var.get()
            if value:
                entry[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in STAMPED.values() and key not in entry and value is not None:
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def stamp_records() -> None:
    """Give every log record the request and job ids current where it was made (idempotent).

    A record may be formatted later or elsewhere (a queue handler, pytest's capture); the
    ids must be those of the thread that logged it.
    """
    base = logging.getLogRecordFactory()
    if getattr(base, "stamps_ids", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        setattr(record, STAMPED["request_id"], request_id_var.get())
        setattr(record, STAMPED["job_id"], job_id_var.get())
        return record

    factory.stamps_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Route every logger to one JSON handler on stderr (worker and release processes)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    stamp_records()
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):  # one line per upstream request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)


class JobLogContext:
    """RQ worker mixin: a job's log lines carry its id and the request id that enqueued it."""

    def perform_job(self, job: Any, queue: Any) -> bool:
        with bound(request_id=(job.meta or {}).get("request_id"), job_id=job.id):
            return super().perform_job(job, queue)  # type: ignore[misc]


class TracedQueue(Queue):
    """An RQ queue whose new jobs carry the current request id in their meta."""

    def create_job(self, *args: Any, **kwargs: Any) -> Any:
        job = super().create_job(*args, **kwargs)
        request_id = request_id_var.get()
        if request_id and "request_id" not in job.meta:
            job.meta["request_id"] = request_id
        return job
