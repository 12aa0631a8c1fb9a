"""GET /api/v1/models: the AI models chats may use."""
from __future__ import annotations

from flask import Blueprint, jsonify

from web.auth.tokens import login_required
from web.redis_client import get_redis
from web.services import models

bp = Blueprint("models", __name__, url_prefix="/api/v1/models")


@bp.get("")
@login_required
def list_models():
    return jsonify(models.available(get_redis()))
