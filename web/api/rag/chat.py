"""/chat/send (POST and GET for EventSource) and /chat/sessions of the RAG API (004)."""
from __future__ import annotations

from typing import Any, Callable

from flask import Response, current_app, g, jsonify, request
from werkzeug.exceptions import MethodNotAllowed

from web.api.described import accepts, emits, responds
from web.api.parsing import parse_query, read_json_object
from web.api.rag import answers, bp, relay
from web.api.rag.schemas import PageQuery, SendQuery, SendRequest, parse_send
from web.api.rag.serializers import message_view, session_view
from web.api.socket_access import held_by, stream_checks, stream_connection
from web.auth.tokens import login_required, query_token_allowed
from web.db import get_db
from web.errors import BadRequest, ErrorBody
from web.redis_client import get_redis
from web.services import rag_chat, rag_sessions
from web.services.connections import ConnectionLease
from workers import events


SEND_EVENTS = {
    answers.SessionEvent: "`session` comes first, for a new session only;",
    answers.StatusEvent: "`status` lines tell the progress (searching, notes, found, generating);",
    answers.TokenEvent: "`token` carries each piece of the reply;",
    answers.CitationEvent: "`citation` follows for each chunk given as context, numbered by `marker`;",
    answers.ErrorEvent: "`error` says why a reply failed (or that events were lost, or that a logout, the "
                        "account's deactivation or the user's removal from the chat ended the stream);",
    answers.DoneEvent: "`done` ends every stream with the stored reply (but one a logout, a deactivation or a "
                       "removal ended).",
}


def streams_reply(view: Callable) -> Callable:
    """What both /chat/send views answer: the reply as SSE, or 204 to a reconnect after its end."""
    for event, text in reversed(SEND_EVENTS.items()):  # applied bottom-up, like stacked decorators
        view = emits(event, text)(view)
    view = responds(200, media_type="text/event-stream", description=(
        "Unnamed events (no `event:` line, so `EventSource.onmessage` gets them all): an `id:` "
        "(`<reply id>:<stream id>:<n>`) and one `data:` line of JSON whose `type` says what it is, "
        "described in `x-events`; `: keep-alive` comments in silences. `X-Session-Id` names the session. "
        "A request with `Last-Event-ID` resumes that reply after that event and posts nothing."))(view)
    view = responds(429, ErrorBody, "Nothing stored, with `Retry-After`: too many replies streaming "
                    "(`MAX_CONCURRENT_STREAMS`), or too many open connections, resumes too "
                    "(`MAX_CONNECTIONS_PER_USER`: WebSockets and event streams together)")(view)
    return responds(204, description="A `Last-Event-ID` of a `done` event: the reply has ended, "
                                     "so an EventSource stops reconnecting")(view)


@bp.post("/chat/send")
@accepts(body=SendRequest, invalid=400)
@streams_reply
@login_required
def send():
    """Send a message; the answer streams as SSE (session, status, token, citation, error, done)."""
    return send_message(SendRequest, read_json_object(status=400), "body")


@bp.get("/chat/send")
@query_token_allowed
@accepts(query=SendQuery, invalid=400)
@responds(414, media_type="text/html", description="A URL longer than the HTTP server reads (the server's own "
                                                    "page; gunicorn answers 400 past 4 KiB): send long messages by POST")
@streams_reply
@login_required
def send_from_query():
    """Send a message from the query string, for EventSource; the answer streams as SSE.

    The same fields as `POST /chat/send`, with `search_options` as JSON text, an empty
    `session_id`/`dataset_id` meaning none, and the token in `auth_token` (an EventSource cannot
    send an `Authorization` header).
    """
    return send_message(SendQuery, request.args.to_dict(), "query")


@bp.before_request
def refuse_head_send():
    """Flask answers HEAD with every GET view, and this GET posts a message: a HEAD (link checkers,
    prefetchers) must not spend a reply."""
    if request.method == "HEAD" and request.endpoint == f"{bp.name}.send_from_query":
        raise MethodNotAllowed(valid_methods=["GET", "POST"])


def send_message(model: type[SendRequest], data: dict[str, Any], source: str) -> Response:
    """Post the message and stream the reply, or resume a reply when `Last-Event-ID` is sent."""
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id:
        return resume(last_event_id)
    body = parse_send(model, data, source)
    with stream_connection() as connection:  # 429 before anything is stored
        started = rag_chat.start(get_db(), get_redis(), g.user, body.message,
                                 str(body.session_id) if body.session_id else None, body.search_options.model_dump(),
                                 str(body.dataset_id) if body.dataset_id else None)
        chat, reply_uuid = started.chat, started.reply.uuid
        lead = [relay.json_frame(relay.event_id(reply_uuid, started.cursor, relay.SESSION),
                                 {"type": "session", "session_id": chat.uuid, "title": chat.title})]
        return sse(chat.id, chat.uuid, reply_uuid, started.cursor, None, lead if started.new_session else [],
                   connection, resumed=False)


def resume(last_event_id: str) -> Response:
    """A reconnect continues the reply after its last event; after `done` it gets 204 (EventSource stops)."""
    position = relay.parse_event_id(last_event_id)
    if position is None:
        raise BadRequest("Last-Event-ID is not an event id of /chat/send")
    chat, reply = rag_chat.reply_for(get_db(), g.user, position.reply_uuid)
    if position.index == relay.END:
        return Response(status=204)
    seen_index = position.index if events.is_ascii_number(position.index) else None
    with stream_connection() as connection:
        return sse(chat.id, chat.uuid, reply.uuid, position.stream_id, seen_index, [], connection, resumed=True)


def sse(chat_id: int, chat_uuid: str, reply_uuid: str, cursor: str, seen_index: str | None,
        lead: list[str], connection: ConnectionLease, *, resumed: bool) -> Response:
    frames = relay.reply_frames(current_app.extensions["relay_hub"], get_redis(), chat_id, reply_uuid, cursor,
                                seen_index=seen_index, lead=lead, checks=stream_checks(chat_id, connection),
                                resumed=resumed)
    return held_by(Response(frames, mimetype="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Session-Id": chat_uuid}), connection)


@bp.get("/chat/sessions")
@responds(200, answers.SessionList)
@login_required
def list_sessions():
    """The user's sessions, most recently active first, with the documents they cited."""
    query = parse_query(PageQuery, error_status=400)
    total, page = rag_sessions.sessions_page(get_db(), g.user, query.limit, query.offset)
    return jsonify({"sessions": [session_view(info) for info in page], "total_count": total})


@bp.get("/chat/sessions/<session_id>")
@responds(200, answers.SessionDetail)
@login_required
def get_session(session_id: str):
    """A session with its messages, their sources and cited documents."""
    info, messages, user_uuids = rag_sessions.session_detail(get_db(), g.user, session_id)
    deleted = info.deleted_documents
    return jsonify({"session": session_view(info),
                    "messages": [message_view(m, info.chat.uuid, user_uuids, deleted) for m in messages]})


@bp.delete("/chat/sessions/<session_id>")
@responds(200, answers.SessionDeleted)
@login_required
def delete_session(session_id: str):
    """Delete a session and its messages for good (its owner only)."""
    rag_sessions.delete_session(get_db(), get_redis(), g.user, session_id)
    return jsonify({"message": "Chat session deleted successfully"})
