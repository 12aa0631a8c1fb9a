"""Find, check and revoke JWTs.

The documents put tokens in different places: `Authorization: Bearer`, `?token=` (chat
WebSocket) and `?auth_token=` (RAG SSE). flask-jwt-extended reads one query-string name,
so every protected view goes through this one lookup instead. A token in the URL leaks into
proxy logs, browser history and Referer headers, so only the views marked
`query_token_allowed` (WebSockets and EventSource streams, whose browser clients cannot send
a header) read one; elsewhere it is ignored and the 401 says why.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable

import jwt as pyjwt
from flask import current_app, g, request
from flask_jwt_extended import decode_token
from redis import Redis

from models import User
from web.db import get_db
from web.errors import Unauthorized
from web.redis_client import get_redis

QUERY_TOKEN_NAMES = ("token", "auth_token")
REVOKED = "Token has been revoked"
DEACTIVATED = "Account deactivated"
URL_TOKEN_IGNORED = ("Send the access token in the Authorization header: a token in the URL is only read "
                     "by WebSocket and event-stream routes")


def revoked_key(jti: str) -> str:
    return f"parley:revoked:{jti}"


def is_revoked(redis: Redis, jti: str) -> bool:
    return bool(redis.exists(revoked_key(jti)))


def deactivated_key(user_id: int) -> str:
    return f"parley:deactivated:{user_id}"


def mark_deactivated(redis: Redis, user_id: int, deactivated: bool) -> None:
    """Set or clear the user's deactivation marker. The database says whether a user is active
    (every request reads it); the marker lets open sockets and streams notice without a query
    at each check (see `session_end`)."""
    if deactivated:
        redis.set(deactivated_key(user_id), "1")
    else:
        redis.delete(deactivated_key(user_id))


def session_end_keys(jti: str, user_id: int) -> list[str]:
    """What to MGET to learn whether a socket or stream opened with token `jti` of user `user_id` must
    end (`session_end`): one command, so the check shares a round trip with the connection's lease."""
    return [revoked_key(jti), deactivated_key(user_id)]


def session_end(values: list[Any]) -> str | None:
    """Why a socket or stream must end, from the values of its `session_end_keys`: DEACTIVATED (by an
    admin), REVOKED (a logout), or None while neither."""
    revoked, deactivated = values
    if deactivated is not None:
        return DEACTIVATED
    return REVOKED if revoked is not None else None


def query_token_allowed(view: Callable) -> Callable:
    """Let `view` read the token from `?token=` / `?auth_token=` too: for WebSocket and
    event-stream views only, whose browser clients (WebSocket, EventSource) cannot set a header."""
    view.query_token_allowed = True
    return view


def reads_query_token(view: Callable | None) -> bool:
    """Whether `view` is marked `query_token_allowed`."""
    return getattr(view, "query_token_allowed", False)


def view_reads_query_token() -> bool:
    """Whether the view this request matched reads a token from the URL (none matched: no)."""
    return reads_query_token(current_app.view_functions.get(request.endpoint))


def query_token() -> str | None:
    return next((request.args[name] for name in QUERY_TOKEN_NAMES if request.args.get(name)), None)


def request_token() -> str | None:
    """The Bearer token of the Authorization header; else the URL's, on views that read it."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if view_reads_query_token():
        return query_token()
    return None


def missing_token_reason() -> str:
    """Why a request has no token: none was sent, or it was sent in a URL this view does not read."""
    if query_token() and not view_reads_query_token():
        return URL_TOKEN_IGNORED
    return "Not authenticated"


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, decoded once per request (the rate limiter needs them before the view)."""
    decoded = g.setdefault("decoded_tokens", {})
    if token not in decoded:
        decoded[token] = decode_token(token)
    return decoded[token]


def verify(token: str | None, kind: str = "access") -> dict[str, Any]:
    """Decode and check a token; raise Unauthorized with a reason a client can act on."""
    if not token:
        raise Unauthorized(missing_token_reason(), headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = claims_of(token)
    except pyjwt.ExpiredSignatureError:
        raise Unauthorized("Token has expired", headers={"WWW-Authenticate": "Bearer"}) from None
    except Exception:
        raise Unauthorized("Could not validate credentials", headers={"WWW-Authenticate": "Bearer"}) from None
    if claims.get("type") != kind:
        article = "An" if kind[0] in "aeiou" else "A"
        raise Unauthorized(f"{article} {kind} token is required", headers={"WWW-Authenticate": "Bearer"})
    if is_revoked(get_redis(), claims["jti"]):
        raise Unauthorized(REVOKED, headers={"WWW-Authenticate": "Bearer"})
    return claims


def user_from_claims(claims: dict[str, Any]) -> User:
    user = get_db().get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise Unauthorized("User not found or inactive", headers={"WWW-Authenticate": "Bearer"})
    return user


def authenticate(kind: str = "access") -> User:
    claims = verify(request_token(), kind)
    g.claims = claims
    g.user = user_from_claims(claims)
    return g.user


def login_required(view: Callable) -> Callable:
    """Require a valid access token; the user is `g.user`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        authenticate()
        return view(*args, **kwargs)

    return wrapper


def revoke(claims: dict[str, Any]) -> None:
    """Block a token until it would have expired anyway."""
    ttl = int(claims["exp"] - datetime.now(timezone.utc).timestamp())
    if ttl > 0:
        get_redis().set(revoked_key(claims["jti"]), "1", ex=ttl)
