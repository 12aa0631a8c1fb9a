"""/health of the RAG API (004): no token needed; 503 when the database or Redis is down."""
from __future__ import annotations

from flask import jsonify

from web.api.rag import bp
from web.limits import limiter
from web.services import rag_health


@bp.get("/health")
@limiter.exempt
def health():
    """Health of the database, Redis, workers, the AI upstream and embeddings (no token)."""
    body, status = rag_health.health()
    return jsonify(body), status
