"""Endpoint 12: POST /api/v1/chat/chats/{chat_id}/ai-message (primary upstream only)."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify

from models import Chat, Message
from web.api.chat import bp
from web.api.chat.answers import AiReply, AiReplyFailed, AiReplyStarted, AiUnavailable
from web.api.chat.schemas import AiMessageRequest
from web.api.described import responds
from web.api.parsing import parse_body
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import ApiError, ErrorBody
from web.realtime.reply_wait import ReplyNotFinished, wait_for_reply_end
from web.redis_client import get_redis
from web.services import chats, history, replies, upstreams
from workers import events, runtime, upstream

FAILURE_STATUS = {"no_api_key": 400, "service_unavailable": 503, "timeout": 504, "upstream_timeout": 504}


@bp.post("/chats/<chat_id>/ai-message")
@responds(200, AiReply | AiReplyStarted, "The finished reply (`stream: false`), or the ids of the reply "
          "streaming on the chat's WebSocket (`stream: true`)")
@responds(400, AiReplyFailed | ErrorBody, "No OpenAI API key is configured (`detail`)")
@responds(502, AiReplyFailed, "The upstream failed or the reply was stopped; its partial text is kept")
@responds(503, AiUnavailable | ErrorBody, "The primary upstream's circuit is open, or the job queue is "
          "unreachable (`detail`)")
@responds(504, AiReplyFailed | ErrorBody, "The upstream timed out, or the reply did not finish within "
          "`AI_MESSAGE_WAIT_S` (`detail` names the ai_message_id; the reply goes on)")
@login_required
def ai_message(chat_id: str):
    """Send a message to the AI on the primary upstream ("LangChain service") only."""
    body = parse_body(AiMessageRequest)
    db, redis, settings = get_db(), get_redis(), runtime.current().settings
    chat, member = chats.chat_for_member(db, g.user, chat_id)
    user_key = upstreams.key_for_reply(db, g.user, primary_only=True)
    if upstreams.primary_is_open(redis, user_key):
        return unavailable(redis)
    cursor = events.last_event_id(redis, chat.id)
    message, reply = replies.post_message(db, redis, chat, member, g.user, body.message, want_reply=True,
                                          hidden=not body.save_to_history, primary_only=True)
    if body.stream:
        return jsonify({
            "success": True, "message": "AI response generation started via LangChain", "streaming": True,
            "service_used": "langchain",
            "data": {"user_message_id": message.uuid, "ai_message_id": reply.uuid, "chat_id": chat.uuid,
                     "model_used": reply.model, "stream_via": "websocket",
                     "service_info": {"circuit_breaker_state": breaker_state(redis), "langchain_available": True}},
            "timestamp": events.iso_now(),
        })
    wait_for_end(chat.id, cursor, reply.uuid, settings.ai_message_wait_s)
    reply = replies.stored_reply(db, reply, "Chat not found")
    db.refresh(chat)
    if reply.status != "DELIVERED":
        return failed(redis, reply)
    return jsonify(answer(chat, message, reply, redis))


def wait_for_end(chat_id: int, cursor: str, reply_uuid: str, wait_s: float) -> None:
    try:
        wait_for_reply_end(chat_id, cursor, reply_uuid, wait_s, lambda: history.reply_ended(reply_uuid))
    except ReplyNotFinished:
        raise ApiError(f"The AI reply did not finish within {wait_s:g} seconds; it goes on streaming "
                       f"on the chat's WebSocket (ai_message_id {reply_uuid})", status=504) from None


def breaker_state(redis) -> str:
    return upstreams.breaker_view(redis, upstream.PRIMARY)["state"]


def unavailable(redis):
    return jsonify({
        "success": False, "error": "LangChain service temporarily unavailable",
        "error_code": "langchain_service_unavailable",
        "service_info": {"circuit_breaker_state": breaker_state(redis), "service_health": "unhealthy"},
        "timestamp": events.iso_now(),
    }), 503


def failed(redis, reply: Message):
    if reply.error_code == "service_unavailable":
        return unavailable(redis)
    code = reply.error_code or ("cancelled" if reply.status == "CANCELLED" else "upstream_error")
    return jsonify({
        "success": False, "error": upstream.ERROR_TEXT.get(code, "The AI reply did not complete"),
        "error_code": code, "data": {"ai_message_id": reply.uuid, "partial_content": reply.content},
        "service_info": {"circuit_breaker_state": breaker_state(redis)},
        "timestamp": events.iso_now(),
    }), FAILURE_STATUS.get(code, 502)


def answer(chat: Chat, message: Message, reply: Message, redis) -> dict[str, Any]:
    return {
        "success": True, "message": "AI response generated successfully via LangChain service",
        "streaming": False, "service_used": "langchain",
        "data": {
            "user_message": {"id": message.uuid, "content": message.content, "timestamp": events.iso(message.created_at)},
            "ai_response": {
                "id": reply.uuid, "content": reply.content, "model_used": reply.model,
                "processing_time_ms": reply.processing_time_ms,
                "tokens_used": {"input": reply.tokens_in, "output": reply.tokens_out, "total": reply.tokens_used},
                "finish_reason": reply.finish_reason, "timestamp": events.iso(reply.updated_at),
                "via_langchain": True,
            },
            "chat_info": {"chat_id": chat.uuid, "total_messages": chat.message_count,
                          "total_tokens_used": chat.total_tokens},
            "service_info": {"circuit_breaker_state": breaker_state(redis), "service_health": "healthy"},
        },
        "timestamp": events.iso_now(),
    }
