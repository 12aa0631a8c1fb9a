"""Calls to the OpenAI-compatible upstream through the `openai` client."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import openai

from workers.settings import Settings

_clients: dict[tuple[str | None, str, float], openai.OpenAI] = {}
_lock = threading.Lock()


class NoApiKey(Exception):
    """No upstream key is configured for this user or this deployment."""


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str | None
    api_key: str


def primary(settings: Settings) -> Upstream:
    if not settings.openai_api_key:
        raise NoApiKey()
    return Upstream("primary", settings.openai_base_url, settings.openai_api_key)


def client_for(upstream: Upstream, timeout_s: float) -> openai.OpenAI:
    """One pooled client per upstream and key, shared by the threads of a process."""
    key = (upstream.base_url, upstream.api_key, timeout_s)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(
                api_key=upstream.api_key,
                base_url=upstream.base_url,
                max_retries=0,  # a retry would restart a half-streamed reply
                timeout=openai.Timeout(timeout_s, connect=10.0),
            )
            _clients[key] = client
        return client


def error_code(exc: BaseException) -> str:
    """A short, stable code for an upstream failure, as sent in `ai_error` events."""
    if isinstance(exc, openai.AuthenticationError):
        return "invalid_api_key"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.NotFoundError):
        return "model_not_found"
    if isinstance(exc, openai.APITimeoutError):
        return "upstream_timeout"
    if isinstance(exc, openai.BadRequestError):
        return "upstream_bad_request"
    return "upstream_error"


ERROR_TEXT = {
    "no_api_key": "Please set up your OpenAI API key in Settings to enable AI responses.",
    "invalid_api_key": "The AI service rejected the API key.",
    "rate_limited": "The AI service is rate limiting requests; try again shortly.",
    "model_not_found": "The AI model of this chat is not available.",
    "upstream_timeout": "The AI service did not answer in time.",
    "upstream_bad_request": "The AI service rejected the request.",
    "upstream_error": "The AI service failed while generating the reply.",
    "timeout": "The reply took longer than allowed and was stopped.",
    "worker_lost": "The worker generating this reply stopped unexpectedly.",
}
