"""The OpenAI-compatible upstreams, reached through the `openai` client.

The primary upstream is the document's "LangChain service"; the optional fallback is its
"direct OpenAI". Each has a circuit breaker shared through Redis. A user's own key, when
set, is used with the primary's address (or the user's own base URL) before the server key.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import openai
from redis import Redis

from workers.addresses import UnsafeAddress, check_public
from workers.breaker import CircuitBreaker
from workers.settings import Settings

PRIMARY, FALLBACK = "primary", "fallback"
SERVICE_NAMES = {PRIMARY: "langchain", FALLBACK: "openai"}

MAX_CLIENTS = 1000  # clients (one per address, key and timeout) a process keeps; the least recently used go first
_clients: dict[tuple[str | None, str, float, bool], openai.OpenAI] = {}
_pools: dict[bool, Any] = {}  # public_only: the process's one HTTP client (connection pool) of that kind
_lock = threading.Lock()


class NoApiKey(Exception):
    """No upstream key is configured for this user or this deployment."""


class CircuitOpen(Exception):
    """Every usable upstream's circuit is open."""


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str | None
    api_key: str
    guarded: bool  # counts towards (and obeys) the named circuit breaker
    public_only: bool = False  # a user's own address: see workers.addresses
    users_key: bool = False  # a user's own key: its 429s are its own quota, not the service's


def primary(settings: Settings, user_key: tuple[str, str | None] | None = None) -> Upstream:
    """The primary upstream, with the user's own key and address if given (UnsafeAddress for a private one)."""
    if user_key is not None:
        key, base_url = user_key
        own_address = has_own_address(settings, user_key)
        public_only = own_address and not settings.allow_private_user_upstreams
        if public_only:
            check_public(base_url)
        return Upstream(PRIMARY, base_url or settings.openai_base_url, key, guarded=not own_address,
                        public_only=public_only, users_key=True)
    if not settings.openai_api_key:
        raise NoApiKey()
    return Upstream(PRIMARY, settings.openai_base_url, settings.openai_api_key, guarded=True)


def has_own_address(settings: Settings, user_key: tuple[str, str | None] | None) -> bool:
    """Does the user's key go to an address of its own (not watched by the primary's breaker)?"""
    return user_key is not None and user_key[1] is not None and user_key[1] != settings.openai_base_url


def primary_or_none(settings: Settings) -> Upstream | None:
    try:
        return primary(settings)
    except NoApiKey:
        return None


def fallback(settings: Settings) -> Upstream | None:
    if not settings.fallback_openai_base_url and not settings.fallback_openai_api_key:
        return None
    key = settings.fallback_openai_api_key or settings.openai_api_key
    if not key:
        return None
    return Upstream(FALLBACK, settings.fallback_openai_base_url or settings.openai_base_url, key, guarded=True)


def breaker(redis: Redis, settings: Settings, name: str) -> CircuitBreaker:
    return CircuitBreaker(redis, name, threshold=settings.breaker_failure_threshold,
                          timeout_s=settings.breaker_timeout_s)


def client_for(upstream: Upstream, timeout_s: float) -> openai.OpenAI:
    """A client for the upstream and key, kept for the next call. Every client of a process shares
    one connection pool (a user's own address the public-only one): a client with its own cost
    25 ms and 0.9 MB here, and every user key had one for the process's life."""
    key = (upstream.base_url, upstream.api_key, timeout_s, upstream.public_only)
    with _lock:
        client = _clients.pop(key, None)  # put back last: the least recently used go first
        if client is None:
            client = openai.OpenAI(
                api_key=upstream.api_key,
                base_url=upstream.base_url,
                max_retries=0,  # a retry would restart a half-streamed reply
                timeout=openai.Timeout(timeout_s, connect=10.0),  # sent with each request
                http_client=shared_pool(upstream.public_only),
            )
            if len(_clients) >= MAX_CLIENTS:
                del _clients[next(iter(_clients))]
        _clients[key] = client
        return client


def shared_pool(public_only: bool) -> Any:
    """The process's HTTP client of that kind (the caller holds `_lock`). It keeps no cookies: its
    jar would carry a cookie set on one user's key to every other user's requests."""
    if public_only not in _pools:
        if public_only:
            from workers.public_client import public_only_client  # see its docstring

            pool = public_only_client()
        else:
            pool = openai.DefaultHttpxClient()
        pool.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        _pools[public_only] = pool
    return _pools[public_only]


def warm_clients(settings: Settings) -> None:
    """Build the server's clients before the first job: the first client of a process cost about
    100 ms here (its HTTP stack, TLS context and chat resource), which every worker process's
    first reply paid before its first token."""
    for source in (primary_or_none(settings), fallback(settings)):
        if source is not None:
            client = client_for(source, settings.upstream_timeout_s)
            client.chat.completions  # noqa: B018 - the resource is built on its first use


def is_outage(exc: BaseException, users_key: bool = False) -> bool:
    """Failures that say the service is unwell (and count for its breaker), not the request.

    A 429 to the server's key says the service is saturated; to a user's own key, it says that
    key's quota is spent, and must not open the circuit for every other user.
    """
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or (exc.status_code == 429 and not users_key)
    return isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError))


def record_error(guard: CircuitBreaker, exc: BaseException, users_key: bool = False) -> None:
    """Tell the breaker what a failed call says about the service.

    An outage is a failure; an answer refusing the request (400, 401, 404) shows the service is
    up, a success; anything else (a user's key rate limited among them) says nothing, but the
    call may have been the HALF_OPEN trial, whose lock must not be kept (every other call would
    be refused although the service answers).
    """
    if is_outage(exc, users_key):
        guard.record_failure()
    elif isinstance(exc, openai.APIStatusError) and exc.status_code != 429:
        guard.record_success()
    else:
        guard.release_trial()


def error_code(exc: BaseException) -> str:
    """A short, stable code for an upstream failure, as sent in `ai_error` events."""
    if isinstance(exc, UnsafeAddress) or isinstance(exc.__cause__, UnsafeAddress):
        return "unsafe_base_url"  # raised by the client's transport (the client may wrap it)
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
    "unsafe_base_url": "The base URL of your API key points at a private or local address, which this server "
                       "does not call; change it in Settings.",
    "invalid_api_key": "The AI service rejected the API key.",
    "rate_limited": "The AI service is rate limiting requests; try again shortly.",
    "model_not_found": "The AI model of this chat is not available.",
    "upstream_timeout": "The AI service did not answer in time.",
    "upstream_bad_request": "The AI service rejected the request.",
    "upstream_error": "The AI service failed while generating the reply.",
    "service_unavailable": "The AI service is temporarily unavailable (circuit breaker open).",
    "timeout": "The reply took longer than allowed and was stopped.",
    "worker_lost": "The worker generating this reply stopped unexpectedly.",
    "queue_unavailable": "The reply could not be started.",
}


def has_api_key(settings: Settings, user_key: tuple[str, str | None] | None, primary_only: bool) -> bool:
    """Has some upstream of a reply a key: the user's own, the server's, or (unless `primary_only`)
    the fallback's? Known before a reply is stored, so a request can be refused up front."""
    return user_key is not None or bool(settings.openai_api_key) or (
        not primary_only and fallback(settings) is not None)


def reply_chain(settings: Settings, user_key: tuple[str, str | None] | None, primary_only: bool) -> list[Upstream]:
    """The upstreams to try for a reply, in order; NoApiKey when none has a key (`has_api_key`)."""
    if not has_api_key(settings, user_key, primary_only):
        raise NoApiKey()
    chain = [primary(settings, user_key)] if user_key or settings.openai_api_key else []
    backup = None if primary_only else fallback(settings)
    return chain if backup is None else [*chain, backup]
