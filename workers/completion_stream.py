"""A streamed chat completion, read as raw server-sent events.

The `openai` client still makes the request (key, base URL, timeouts, and the typed
errors of a refused request), but the answer's SSE lines are decoded here with
`json.loads` into plain dicts: building the client's pydantic model for every chunk cost
about 20 times the decoding and was the largest part of the worker's per-token CPU.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any, Iterator

import httpx2
import openai

# After `[DONE]` only the body's end is due; an upstream that has not ended its body by then (silent,
# or still sending lines) loses its connection rather than keep the worker thread: each read would
# wait up to UPSTREAM_TIMEOUT_S.
DRAIN_S = 0.5


class CompletionStream:
    """The deltas of one streamed completion; `usage` and `finish_reason` are set as they arrive."""

    def __init__(self, client: openai.OpenAI, messages: list[dict[str, str]], params: dict[str, Any]) -> None:
        request = client.chat.completions.with_streaming_response.create(
            messages=messages, stream=True, stream_options={"include_usage": True}, **params
        )
        self.response = request.__enter__()  # sends it; a refused request raises openai's typed error here
        self.lines = self.response.iter_lines()
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.done = False  # `[DONE]` came: only the body's end is left to read

    def close(self) -> None:
        """Release the connection: after `[DONE]`, to the client's pool for the next reply (the
        rest of the body is read first, within DRAIN_S, else the client drops it); mid-stream, closed.

        The body's end is read from the raw stream, whose end does not release the connection:
        httpx's own iterators give it back to the pool as they reach the end, before the deadline's
        timer is cancelled, and a timer firing then would cut a connection another thread took."""
        http_response = self.response.http_response
        network = http_response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        try:
            if self.done and sock is not None:  # without a socket to cut, no wait: closed
                with cut_off_after(DRAIN_S, sock):
                    for _ in http_response.stream:
                        pass
        except httpx2.TransportError:  # cut off at the deadline: the connection is closed, not reused
            pass
        finally:
            self.response.close()

    def texts(self) -> Iterator[str]:
        """Each non-empty piece of content, in order, until the stream's `[DONE]` (the caller then
        closes the stream, once the reply is stored: see `close`)."""
        try:
            for data in self._events():
                if data.startswith("[DONE]"):
                    self.done = True
                    return
                chunk = json.loads(data)
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise stream_error(chunk["error"], self.response.http_request)
                self.usage = chunk.get("usage") or self.usage
                for choice in chunk.get("choices") or ():
                    self.finish_reason = choice.get("finish_reason") or self.finish_reason
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
        finally:
            if not self.done:
                self.close()

    def _events(self) -> Iterator[str]:
        """The data of each event (its `data:` lines joined by newlines), per the SSE format."""
        data: list[str] = []
        for line in self.lines:
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
        if data:
            yield "\n".join(data)


@contextlib.contextmanager
def cut_off_after(seconds: float, sock: socket.socket) -> Iterator[None]:
    """Shut `sock` down if the block still runs after `seconds`: a read blocked on it returns at once."""
    timer = threading.Timer(seconds, shut_down, (sock,))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()  # a cut under way ends before the response is closed (and its connection released)


def shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer closed it already
        sock.shutdown(socket.SHUT_RDWR)


def stream_error(error: Any, request: Any) -> openai.APIError:
    """The error an upstream reports inside its stream, as the `openai` client raises it."""
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    return openai.APIError(message=message, request=request, body=error)
