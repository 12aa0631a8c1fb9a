"""Endpoints 8-11 of the chat API and the two test endpoints of its Examples section."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import text

from web.api.chat import bp
from web.api.chat.schemas import ServiceTestRequest
from web.api.chat.service_answers import (ConnectionTest, LangchainHealth, ServicesStatus, ServiceTest,
                                          ServiceTestFailed, Stats)
from web.api.described import responds
from web.api.parsing import parse_optional_body
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import ErrorBody, ServiceUnavailable
from web.realtime import presence
from web.redis_client import get_redis
from web.services import chats, models, upstreams
from web.services.rag_health import timed
from workers import events, runtime, upstream


def envelope(message: str, data: dict[str, Any]) -> Any:
    return jsonify({"success": True, "message": message, "data": data, "timestamp": events.iso_now()})


def websocket_view() -> dict[str, Any]:
    """Open sockets on every web process. The totals count every chat; `connections_per_chat`
    names only the caller's chats (every chat for an admin): chat ids are not everyone's to see."""
    per_chat = presence.connections(get_redis())
    shown = per_chat if g.user.is_admin else {
        chat_uuid: per_chat[chat_uuid] for chat_uuid in chats.member_chat_uuids(get_db(), g.user, list(per_chat))}
    return {"total_connections": sum(per_chat.values()), "active_chats": len(per_chat),
            "connections_per_chat": shown}


@bp.get("/stats")
@responds(200, Stats, "Open chat WebSockets on every web process (per chat: the caller's chats only, every chat for an admin)")
@login_required
def stats():
    """Get chat system statistics and WebSocket connections."""
    return jsonify({"websocket_connections": websocket_view(), "system_status": "operational",
                    "timestamp": events.iso_now()})


@bp.get("/langchain/health")
@responds(200, LangchainHealth, "The primary upstream's health and circuit breaker (also when unhealthy)")
@login_required
def langchain_health():
    """Check the primary upstream ("LangChain service") and its circuit breaker."""
    redis = get_redis()
    return envelope("LangChain service health check completed", {
        "service_health": upstreams.primary_health(redis),
        "circuit_breaker": upstreams.breaker_view(redis, upstream.PRIMARY),
        "integration_status": "active",
        "fallback_available": upstreams.fallback_available(redis),
    })


@bp.post("/langchain/test")
@responds(200, ServiceTest, "What answered the test completion (the primary, else the fallback)")
@responds(400, ServiceTestFailed, "No API key is configured")
@responds(503, ServiceTestFailed, "No upstream could answer")
@responds(502, ErrorBody, "The test job failed on the worker")
@responds(504, ErrorBody, "The test did not finish within `AI_MESSAGE_WAIT_S`")
@login_required
def langchain_test():
    """Test one completion on the primary upstream, falling back to direct OpenAI."""
    body = parse_optional_body(ServiceTestRequest)
    return service_test(body, "auto", "LangChain service test")


@bp.post("/openai/test")
@responds(200, ServiceTest, "What the fallback upstream answered")
@responds(400, ServiceTestFailed, "No API key is configured")
@responds(503, ServiceTestFailed | ErrorBody, "The fallback failed, or none is configured (`detail`)")
@responds(502, ErrorBody, "The test job failed on the worker")
@responds(504, ErrorBody, "The test did not finish within `AI_MESSAGE_WAIT_S`")
@login_required
def openai_test():
    """Test one completion on the fallback upstream ("direct OpenAI") only."""
    body = parse_optional_body(ServiceTestRequest)
    if upstream.fallback(runtime.current().settings) is None:
        raise ServiceUnavailable("Direct OpenAI (the fallback upstream) is not configured")
    return service_test(body, "fallback", "Direct OpenAI test")


def service_test(body: ServiceTestRequest, target: str, name: str):
    redis = get_redis()
    models.check_model(redis, body.model, ["body", "model"])
    answer = upstreams.probe(redis, g.user, target, body.model_dump(), name)
    if "error_code" in answer:
        status = 400 if answer["error_code"] == "no_api_key" else 503
        return jsonify({"success": False, "error": answer["error"], "error_code": answer["error_code"],
                        "timestamp": events.iso_now()}), status
    used = answer.pop("upstream")
    state = upstreams.breaker_view(redis, upstream.PRIMARY)["state"]
    settings = runtime.current().settings
    source = upstream.fallback(settings) if used == upstream.FALLBACK else upstream.primary_or_none(settings)
    return envelope(f"{name} completed successfully", {
        "request": body.model_dump(),
        "response": answer,
        "service_info": {
            "integration_type": "LangChain Service (Fallback)" if answer["fallback_used"] else "LangChain Service",
            "circuit_breaker_state": state, "service_url": upstreams.service_url(source),
        },
        "user_info": {"user_id": g.user.uuid, "username": g.user.username},
    })


@bp.get("/services/status")
@responds(200, ServicesStatus, "Upstreams, WebSockets, fallback and features")
@login_required
def services_status():
    """Get the status of every service the chat system uses."""
    redis = get_redis()
    settings = runtime.current().settings
    health = upstreams.primary_health(redis)
    fallback_ok = upstreams.fallback_available(redis)
    return envelope("Services status check completed", {
        "langchain_service": {"health": health, "circuit_breaker": upstreams.breaker_view(redis, upstream.PRIMARY),
                              "base_url": health["service_url"]},
        "websocket_manager": {"status": "operational", "connections": websocket_view()},
        "fallback_services": {"direct_openai": {
            "status": "available" if fallback_ok else "unavailable",
            "description": "Direct OpenAI API integration for fallback",
            "service_url": upstreams.service_url(upstream.fallback(settings)),
        }},
        "integration_features": {"circuit_breaker": "enabled",
                                 "automatic_fallback": "enabled" if upstream.fallback(settings) else "disabled",
                                 "streaming_support": "enabled", "health_monitoring": "enabled"},
    })


@bp.post("/test/connection")
@responds(200, ConnectionTest, "Each check; `status` is `degraded` when one is not healthy")
@login_required
def test_connection():
    """Can this web process reach its database, Redis, the job queue and the AI upstreams?"""
    redis = get_redis()
    checks = {"database": timed(lambda: get_db().execute(text("SELECT 1"))),
              "redis": timed(redis.ping),
              "langchain_service": upstreams.primary_health(redis),
              "fallback_available": upstreams.fallback_available(redis)}
    ok = all(c["status"] == "healthy" for c in (checks["database"], checks["redis"], checks["langchain_service"]))
    return envelope("Connection test completed" if ok else "Connection test found problems",
                    {"status": "healthy" if ok else "degraded", **checks,
                     "user_info": {"user_id": g.user.uuid, "username": g.user.username}})

