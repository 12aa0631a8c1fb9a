"""PUT, GET, DELETE /api/v1/users/me/api-keys/openai: the user's own OpenAI-compatible key.

Answers say whether a key is set and its last four characters, never the key itself nor
its encrypted form.
"""
from __future__ import annotations

from flask import g, jsonify

from models import UserApiKey
from web.api.described import responds
from web.api.parsing import parse_body
from web.api.users import bp
from web.api.users.answers import KeySet, KeyUnset
from web.api.users.schemas import ApiKeyRequest
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import field_error
from web.services import api_keys
from workers import runtime
from workers.addresses import UnsafeAddress, check_public
from workers.events import iso

OPENAI = "openai"


def key_view(provider: str, row: UserApiKey | None) -> dict:
    return {
        "provider": provider,
        "is_set": row is not None,
        "last4": row.last4 if row else None,
        "base_url": row.base_url if row else None,
        "updated_at": iso(row.updated_at) if row else None,
    }


@bp.get("/me/api-keys/openai")
@responds(200, KeySet | KeyUnset, "Whether a key is set, and its last four characters")
@login_required
def get_openai_key():
    """Whether the user has an OpenAI-compatible key of their own."""
    return jsonify(key_view(OPENAI, api_keys.find_key(get_db(), g.user.id, OPENAI)))


@bp.put("/me/api-keys/openai")
@responds(200, KeySet, "The key is stored encrypted; replies to this user's messages use it")
@login_required
def set_openai_key():
    """Set (or replace) the user's OpenAI-compatible key and, optionally, its base URL."""
    body = parse_body(ApiKeyRequest)
    settings = runtime.current().settings
    if body.base_url is not None and not settings.allow_private_user_upstreams:
        try:
            check_public(body.base_url)
        except UnsafeAddress as exc:
            raise field_error(["body", "base_url"], f"base_url must point at a public address: {exc}") from None
    row = api_keys.set_key(get_db(), settings, g.user.id, OPENAI, body.api_key, body.base_url)
    return jsonify(key_view(OPENAI, row))


@bp.delete("/me/api-keys/openai")
@responds(204, description="The key is deleted (404 when none was set)")
@login_required
def delete_openai_key():
    """Delete the user's own key (the server's key is used again)."""
    api_keys.delete_key(get_db(), g.user.id, OPENAI)
    return "", 204
