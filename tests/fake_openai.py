"""A fake OpenAI-compatible HTTP server for Parley's tests and benchmarks.

Serves ``/v1/chat/completions`` (streaming and not), ``/v1/models`` and
``/v1/embeddings`` with configurable token counts, delays and failures.
Run standalone with ``python -m tests.fake_openai --port 9999``.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULTS: dict[str, Any] = {
    "tokens": 8, "reply": None, "delay_ms": 0, "first_delay_ms": 0,
    "fail_status": None, "fail_after": None, "api_key": None, "embedding_dim": 64,
    "models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini", "text-embedding-3-small"],
    "hold_embeddings_with": None,  # embeddings of texts holding this string wait until it is set to None
    "trailing_lines": 0,  # SSE comment lines sent after [DONE], delay_ms apart, before the body ends
    "end_delay_ms": 0,  # silence after [DONE] (and any trailing lines) before the body ends
    "set_cookie": None,  # a Set-Cookie header value sent with streamed completions
}
DIRECTIVE_KEYS = ("tokens", "delay_ms", "first_delay_ms", "fail_status", "fail_after")
DIRECTIVE_RE = re.compile(r"\[\[fake:([^\]]*)\]\]")
ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class ApiError(Exception):
    """An error answered to the client as an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or ERROR_KINDS.get(status, ("server_error", None))[1]


def _text(content: Any) -> str:
    """Plain text of a message content (a string or a list of content parts)."""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _directives(messages: list[Any]) -> dict[str, int]:
    """Parse ``[[fake:key=value ...]]`` from the last user message."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    match = DIRECTIVE_RE.search(_text(users[-1].get("content"))) if users else None
    found: dict[str, int] = {}
    for pair in match.group(1).split() if match else []:
        key, _, value = pair.partition("=")
        if key not in DIRECTIVE_KEYS or not value.isdigit():
            raise ApiError(400, f"Invalid fake directive: {pair!r}")
        found[key] = int(value)
    return found


def _tokens(settings: dict[str, Any]) -> list[str]:
    """Content tokens for one answer: ``reply`` split into words, or ``t{i} ``."""
    reply = settings["reply"]
    if reply is None:
        return [f"t{i} " for i in range(settings["tokens"])]
    return re.findall(r"\s*\S+\s*", reply) or ([reply] if reply else [])


def embed(text: str, dim: int) -> list[float]:
    """Deterministic L2-normalised bag-of-words hashing vector."""
    vec = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _sleep_ms(ms: int | None) -> None:
    if ms:
        time.sleep(ms / 1000)


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; behaviour comes from ``server.fake``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet: no log line per request."""

    def _dispatch(self) -> None:
        """Record the request, check auth and route it; errors become JSON error bodies."""
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        settings = fake._record({"path": self.path, "headers": headers, "body": body,
                                 "peer": self.client_address})  # the client's (host, port): its connection
        try:
            if settings["api_key"] is not None and headers.get("authorization") != f"Bearer {settings['api_key']}":
                raise ApiError(401, "Incorrect API key provided.", "invalid_api_key")
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v1/models" and self.command == "GET":
                self._models(settings)
            elif self.command == "POST" and path in ("/v1/chat/completions", "/v1/embeddings"):
                self._answer(path, body, settings)
            else:
                raise ApiError(404, f"Unknown endpoint: {self.command} {self.path}")
        except ApiError as err:
            kind = ERROR_KINDS.get(err.status, ("server_error", None))[0]
            self._json(err.status, {"error": {"message": err.message, "type": kind, "code": err.code}})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = _dispatch

    def _answer(self, path: str, body: Any, settings: dict[str, Any]) -> None:
        """Answer a chat or embeddings request, honouring directives and ``fail_status``."""
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object.")
        if path == "/v1/chat/completions" and isinstance(body.get("messages"), list):
            settings.update(_directives(body["messages"]))
        if settings["fail_status"]:
            _sleep_ms(settings["first_delay_ms"])
            raise ApiError(settings["fail_status"], f"Simulated upstream error {settings['fail_status']}")
        if path == "/v1/embeddings":
            self._embeddings(body, settings)
        else:
            self._chat(body, settings)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _check_model(self, body: dict[str, Any], settings: dict[str, Any]) -> str:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "Missing required parameter: 'model'.")
        if model not in settings["models"]:
            raise ApiError(404, f"The model `{model}` does not exist.", "model_not_found")
        return model

    def _models(self, settings: dict[str, Any]) -> None:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in settings["models"]]
        self._json(200, {"object": "list", "data": data})

    def _embeddings(self, body: dict[str, Any], settings: dict[str, Any]) -> None:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise ApiError(400, "'input' must be a string or a non-empty list of strings.")
        model = self._check_model(body, settings)
        dim = settings["embedding_dim"]
        data = []
        for index, text in enumerate(inputs):
            vector: Any = embed(text, dim)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        used = sum(max(1, len(t.split())) for t in inputs)
        held = settings["hold_embeddings_with"]
        if held and any(held in text for text in inputs):
            self.server.fake.wait_for_release(held)
        _sleep_ms(settings["first_delay_ms"])
        self._json(200, {"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": used, "total_tokens": used}})

    def _chat(self, body: dict[str, Any], settings: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list.")
        model = self._check_model(body, settings)
        tokens, finish = _tokens(settings), "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        prompt = max(1, sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict)))
        usage = {"prompt_tokens": prompt, "completion_tokens": len(tokens), "total_tokens": prompt + len(tokens)}
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model}
        _sleep_ms(settings["first_delay_ms"])
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(tokens)}
            self._json(200, {**base, "object": "chat.completion", "usage": usage,
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        if settings["set_cookie"]:
            self.send_header("Set-Cookie", settings["set_cookie"])
        self.end_headers()

        def event(delta: dict[str, Any] | None, reason: str | None = None, usage: Any = None) -> None:
            chunk: dict[str, Any] = {**base, "object": "chat.completion.chunk"}
            chunk["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": reason}]
            if include_usage:
                chunk["usage"] = usage
            self._chunk(f"data: {json.dumps(chunk)}\n\n")

        event({"role": "assistant", "content": ""})
        fail_after = settings["fail_after"]
        for i, token in enumerate(tokens):
            if fail_after is not None and i >= fail_after:
                break
            if i:
                _sleep_ms(settings["delay_ms"])
            event({"content": token})
        if fail_after is not None:
            self.close_connection = True  # drop the socket without the terminating chunk
            return
        event({}, finish)
        if include_usage:
            event(None, usage=usage)
        self._chunk("data: [DONE]\n\n")
        for _ in range(settings["trailing_lines"]):
            _sleep_ms(settings["delay_ms"])
            self._chunk(": still here\n\n")
        _sleep_ms(settings["end_delay_ms"])
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class _Server(ThreadingHTTPServer):
    """Threading server tuned for many concurrent streams."""

    daemon_threads = True
    request_queue_size = 512
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore errors from clients that went away mid-request."""


class FakeOpenAI:
    """Fake OpenAI-compatible server running in a background daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._lock = threading.Lock()
        self._settings: dict[str, Any] = dict(DEFAULTS)
        self._thread: threading.Thread | None = None
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        """Base URL to hand to an OpenAI client, ending in ``/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    @property
    def completions(self) -> list[dict[str, Any]]:
        """The recorded chat-completion requests (leaving out model lists and embeddings)."""
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def configure(self, **settings: Any) -> None:
        """Change behaviour for following requests (see ``DEFAULTS``)."""
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"Unknown fake settings: {sorted(unknown)}")
        with self._lock:
            self._settings.update(settings)

    def reset(self) -> None:
        """Restore default behaviour and clear recorded requests."""
        with self._lock:
            self._settings = dict(DEFAULTS)
            self.requests.clear()

    def wait_for_release(self, held: str, timeout_s: float = 30.0) -> None:
        """Wait until ``hold_embeddings_with`` is no longer ``held`` (or ``timeout_s`` passed)."""
        deadline = time.monotonic() + timeout_s
        while self._settings["hold_embeddings_with"] == held and time.monotonic() < deadline:
            time.sleep(0.02)

    def _record(self, request: dict[str, Any]) -> dict[str, Any]:
        """Store a received request; return a snapshot of current settings."""
        with self._lock:
            self.requests.append(request)
            return dict(self._settings)


def main() -> None:
    """Serve until killed (for benchmarks)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--tokens", type=int, default=DEFAULTS["tokens"])
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--first-delay-ms", type=int, default=0)
    args = parser.parse_args()
    fake = FakeOpenAI(args.host, args.port)
    fake.configure(tokens=args.tokens, delay_ms=args.delay_ms, first_delay_ms=args.first_delay_ms)
    print(fake.base_url, flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()


if __name__ == "__main__":
    main()
