"""/v1/chat: streaming replies over SSE, model switching, history, deleting sessions."""
from __future__ import annotations

from flask import Response, current_app, g, jsonify, request

from models.base import MAX_KEY
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.api.sessions import bp
from web.api.sessions.answers import (STREAM_FORMAT, FailedReply, HistoryPage, SessionDeleted,
                                      SwitchedModel, WholeReply)
from web.api.sessions.schemas import HistoryQuery, StreamRequest, SwitchModelRequest
from web.api.sessions.serializers import session_view
from web.api.socket_access import held_by, stream_checks, stream_connection
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import ApiError, BadRequest, ErrorBody, Unprocessable
from web.realtime.reply_wait import ReplyNotFinished, wait_for_reply_end
from web.realtime.sse import frame, lost_events_frame, parse_last_event_id, reply_frames
from web.redis_client import get_redis
from web.services import history, models, replies, sessions
from web.services.connections import ConnectionLease
from workers import events, runtime

FAILED_STATUS = {"no_api_key": 400, "service_unavailable": 503, "timeout": 504, "upstream_timeout": 504}


@bp.post("/v1/chat/stream")
@responds(200, media_type="text/event-stream", description=STREAM_FORMAT)
@responds(200, WholeReply)
@responds(400, FailedReply | ErrorBody, "No upstream key for the reply, neither the user's own nor the server's "
          "(`detail`; nothing is stored); an unknown model, an archived session, or a `Last-Event-ID` naming no "
          "reply of the session; or `stream: false` and the reply failed for want of a key removed after the "
          "request was taken (a failed reply)")
@responds(502, FailedReply, "`stream: false` and the upstream failed")
@responds(503, FailedReply | ErrorBody, "`stream: false` and no upstream is available (a failed reply); or the "
          "job queue is unreachable")
@responds(504, FailedReply | ErrorBody, "`stream: false` and the upstream timed out (a failed reply); or the "
          "reply is still running after `AI_MESSAGE_WAIT_S` (it is stored when it ends)")
@responds(429, ErrorBody, "Nothing stored, with `Retry-After`: too many replies streaming (`MAX_CONCURRENT_STREAMS`); "
          "or, for a stream or a resume, too many open connections (`MAX_CONNECTIONS_PER_USER`: WebSockets and "
          "event streams together)")
@login_required
def stream():
    """Send messages to a session (new or `session_id`: only the new ones, or the conversation again,
    all of it or a window, and then the new ones) and stream the AI reply as SSE, or wait for it."""
    resumed = parse_last_event_id(request.headers.get("Last-Event-ID", ""))
    if resumed is not None:
        return resume(*resumed)
    body = parse_body(StreamRequest)
    db, redis = get_db(), get_redis()
    check_model(body.model)
    if not body.stream:
        return whole_reply(*sessions.start(db, redis, g.user, body))
    with stream_connection() as connection:  # 429 before anything is stored
        chat, reply, cursor = sessions.start(db, redis, g.user, body)
        return sse_response(chat.id, reply.uuid, cursor, connection)


def resume(session_id: str, reply_uuid: str, cursor: str, seen_tokens: int | None) -> Response:
    """A reconnect with `Last-Event-ID` continues the same reply from there."""
    db = get_db()
    # Not a session id: 404 (past the 32-bit keys too; SQLite cannot even bind a number past 2**63).
    key = int(session_id) if events.is_ascii_number(session_id) and int(session_id) <= MAX_KEY else -1
    chat, _ = sessions.session_for(db, g.user, key)
    reply = history.message_in_chat(db, chat, reply_uuid)
    if reply is None:
        raise BadRequest("Last-Event-ID does not name a reply of this session")
    unsent_from = cursor if seen_tokens is None else events.id_before(cursor)  # that entry's rest too
    if reply.status != "PROCESSING" and not events.reply_events_after(get_redis(), chat.id, reply_uuid, unsent_from):
        return sse_ended(chat.id, cursor)  # a reconnect after its [DONE] (or after its events left the stream)
    with stream_connection() as connection:
        return sse_response(chat.id, reply_uuid, cursor, connection, seen_tokens, resumed=True)


def sse_response(session_id: int, reply_uuid: str, cursor: str, connection: ConnectionLease,
                 seen_tokens: int | None = None, resumed: bool = False) -> Response:
    frames = reply_frames(current_app.extensions["relay_hub"], get_redis(), session_id, reply_uuid, cursor,
                          f"{session_id}:{reply_uuid}", stream_checks(session_id, connection),
                          lambda: history.reply_ended(reply_uuid), seen_tokens, resumed)
    return held_by(Response(frames, mimetype="text/event-stream", headers=sse_headers(session_id)), connection)


def sse_ended(session_id: int, cursor: str) -> Response:
    frames = [*lost_events_frame(get_redis(), session_id, cursor), frame(None, "[DONE]")]
    return Response(frames, mimetype="text/event-stream", headers=sse_headers(session_id))


def sse_headers(session_id: int) -> dict[str, str]:
    return {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Session-Id": str(session_id)}


def whole_reply(chat, reply, cursor: str):
    """`stream: false`: wait for the reply and answer it as one JSON object."""
    wait_s = runtime.current().settings.ai_message_wait_s
    try:
        wait_for_reply_end(chat.id, cursor, reply.uuid, wait_s, lambda: history.reply_ended(reply.uuid))
    except ReplyNotFinished:
        raise ApiError(f"The reply did not finish within {wait_s:g} seconds; it is stored when it does "
                       f"(session {chat.id}, message {reply.id})", status=504,
                       headers={"X-Session-Id": str(chat.id)}) from None
    reply = replies.stored_reply(get_db(), reply, "Chat session not found")
    body = {"session_id": chat.id, "message_id": reply.id, "model": reply.model, "role": "assistant",
            "content": reply.content, "finish_reason": reply.finish_reason, "status": reply.status,
            "usage": sessions.reply_usage(reply)}
    if reply.status == "FAILED":
        body["detail"] = f"The reply failed: {reply.error_code}"
        return jsonify(body), FAILED_STATUS.get(reply.error_code, 502), {"X-Session-Id": str(chat.id)}
    return jsonify(body), 200, {"X-Session-Id": str(chat.id)}


def check_model(name: str) -> None:
    """400 naming the valid models (the document's status for an invalid model on this surface)."""
    try:
        models.check_model(get_redis(), name, ["body", "model"])
    except Unprocessable as exc:
        raise BadRequest(exc.detail[0]["msg"]) from None


@bp.post("/v1/chat/switch-model")
@responds(200, SwitchedModel)
@login_required
def switch_model():
    """Change a session's model; the history is kept and becomes the new model's context."""
    body = parse_body(SwitchModelRequest)
    db = get_db()
    chat, member = sessions.session_to_continue(db, g.user, body.session_id)
    check_model(body.model)
    sessions.switch_model(db, chat, member, body.model)
    return jsonify({"session_id": chat.id, "model": chat.ai_model,
                    "messages": sessions.transcript(db, [chat.id])[chat.id], "title": chat.title})


@bp.get("/v1/chat/history")
@responds(200, HistoryPage)
@login_required
def chat_history():
    """The user's sessions with their messages, newest activity first, a page at a time."""
    query = parse_query(HistoryQuery, error_status=400)
    db = get_db()
    total, page = sessions.history(db, g.user, query.page, query.page_size, query.start_date, query.end_date,
                                   query.model)
    messages = sessions.transcript(db, [c.id for c in page])
    return jsonify({"total": total, "page": query.page, "page_size": query.page_size,
                    "sessions": [session_view(c, messages[c.id], replies.chat_model(c)) for c in page]})


@bp.delete("/v1/chat/sessions/<int:session_id>")
@responds(200, SessionDeleted)
@login_required
def delete_session(session_id: int):
    """Delete a session for good, with its messages, files and events (its owner only)."""
    sessions.delete_session(get_db(), get_redis(), g.user, session_id)
    return jsonify({"message": "Session deleted successfully"})
