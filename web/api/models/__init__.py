"""GET /api/v1/models: the AI models chats may use."""
from __future__ import annotations

from flask import Blueprint, jsonify

from web.api.described import responds
from web.api.models.answers import ModelList
from web.auth.tokens import login_required
from web.redis_client import get_redis
from web.services import models

bp = Blueprint("models", __name__, url_prefix="/api/v1/models")


@bp.get("")
@responds(200, ModelList, "The upstream's chat models (cached 5 minutes; embedding, speech, image and "
          "moderation models left out), the aliases and the default")
@login_required
def list_models():
    """The AI models chats may use."""
    return jsonify(models.available(get_redis()))
