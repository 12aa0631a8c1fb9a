"""Which AI models a chat may use: the upstream's list (cached in Redis), aliases, defaults."""
from __future__ import annotations

import json
import logging
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from web.errors import field_error
from workers import runtime, upstream
from workers.chat_models import is_chat_model

log = logging.getLogger(__name__)

CACHE_KEY = "parley:models"
FAILED_CACHE_S = 30  # do not ask a failing upstream again on every request
LIST_TIMEOUT_S = 5.0


def upstream_models(redis: Redis) -> list[dict[str, Any]] | None:
    """The primary upstream's models, or None when it cannot be read right now."""
    try:
        cached = redis.get(CACHE_KEY)
    except ResponseError:  # not a string (WRONGTYPE): as unreadable as a value that is not a list
        cached = b""
    if cached is not None:
        models = read_cached(cached)
        if models is not None:
            return models or None
        # else a miss: fetched again and stored over it (it failed every request until it expired)
        log.warning("unreadable cached model list; fetching it again")
    settings = runtime.current().settings
    source = upstream.primary_or_none(settings)
    models: list[dict[str, Any]] = []
    if source is not None:
        try:
            listing = upstream.client_for(source, LIST_TIMEOUT_S).models.list()
            models = [{"id": m.id, "owned_by": getattr(m, "owned_by", None)} for m in listing.data]
        except Exception as exc:
            log.warning("could not list upstream models: %s", type(exc).__name__)
    redis.set(CACHE_KEY, json.dumps(models), ex=settings.models_cache_s if models else FAILED_CACHE_S)
    return models or None


def read_cached(cached: bytes) -> list[dict[str, Any]] | None:
    """The cached list of models (empty after a failed fetch), or None when it is not one."""
    try:
        models = json.loads(cached)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if isinstance(models, list) and all(isinstance(m, dict) and isinstance(m.get("id"), str)
                                        and isinstance(m.get("owned_by"), (str, type(None))) for m in models):
        return models
    return None


def available(redis: Redis) -> dict[str, Any]:
    settings = runtime.current().settings
    listed = upstream_models(redis)
    data = [{"id": m["id"], "owned_by": m.get("owned_by"), "source": "upstream"}
            for m in listed or [] if is_chat_model(m["id"])]
    known = {m["id"] for m in data}
    data += [{"id": alias, "owned_by": None, "source": "alias", "target": target}
             for alias, target in settings.aliases().items() if alias not in known]
    if settings.default_ai_model not in known:
        data.append({"id": settings.default_ai_model, "owned_by": None, "source": "default"})
    return {"object": "list", "data": data, "default_model": settings.default_ai_model,
            "upstream_list_available": listed is not None}


def check_model(redis: Redis, name: str, loc: list[str | int]) -> None:
    """422 for a model that does not chat (see workers.chat_models), or listing the valid models unless the
    upstream's list cannot be read (then any other name goes)."""
    if not is_chat_model(name):
        raise field_error(loc, f"'{name}' is not a chat model")
    listing = available(redis)
    if not listing["upstream_list_available"]:
        return
    valid = [m["id"] for m in listing["data"]]
    if name not in valid:
        raise field_error(loc, f"Unknown model '{name}'; valid models: {', '.join(valid)}")
