"""/health of the RAG API (004): no token needed; 503 when the database or Redis is down."""
from __future__ import annotations

from flask import jsonify

from web.api.described import responds
from web.api.rag import bp
from web.api.rag.health_answers import HealthReport
from web.limits import limiter
from web.services import rag_health


@bp.get("/health")
@responds(200, HealthReport, "Every check; `degraded` when the workers or the AI upstream are not healthy")
@responds(503, HealthReport, "The database or Redis is down (`status: unhealthy`)")
@limiter.exempt
def health():
    """Health of the database, Redis, workers, the AI upstream and embeddings (no token)."""
    body, status = rag_health.health()
    return jsonify(body), status
