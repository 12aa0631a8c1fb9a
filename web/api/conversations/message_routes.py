"""A conversation's messages: list and add (002 endpoints 4 and 5), and the AI response (6)."""
from __future__ import annotations

from flask import g

from web.api.conversations import bp
from web.api.conversations.answers import AddedMessage, AiResponse, Envelope, MessagePage
from web.api.conversations.envelope import found, ok
from web.api.conversations.schemas import AddMessageRequest, AiResponseRequest, MessagesQuery
from web.api.conversations.serializers import added_message_view, ai_response_view, message_view
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.auth.tokens import login_required
from web.db import get_db
from web.redis_client import get_redis
from web.services import agents, conversations


@bp.get("/conversations/<int:conversation_id>/messages")
@responds(200, Envelope[MessagePage])
@login_required
def list_messages(conversation_id: int):
    """A page of the conversation's messages, oldest first, with attachments; the page counts as read."""
    query = parse_query(MessagesQuery)
    db = get_db()
    chat, member = conversations.conversation_for_member(db, g.user, conversation_id)
    page, files, total = conversations.list_messages(db, chat, member, query.limit, query.offset)
    return ok(found(total, "message"), {
        "messages": [message_view(m, files.get(m.id, [])) for m in page],
        "total": total, "limit": query.limit, "offset": query.offset,
    })


@bp.post("/conversations/<int:conversation_id>/messages")
@responds(201, Envelope[AddedMessage], "Created")
@login_required
def add_message(conversation_id: int):
    """Add a message as the user or as the agent, without asking the AI for a reply."""
    body = parse_body(AddMessageRequest)
    db = get_db()
    chat, member = conversations.conversation_for_member(db, g.user, conversation_id)
    message, files = conversations.add_message(db, get_redis(), chat, member, g.user, body.content, body.sender_type,
                                               [item.model_dump() for item in body.attachments])
    return ok("Message added successfully", added_message_view(message, files), 201)


@bp.post("/conversations/<int:conversation_id>/ai-response")
@responds(200, Envelope[AiResponse], "The reply, delivered")
@login_required
def ai_response(conversation_id: int):
    """Send a message and wait for the AI's reply (the given agent's, else the conversation's).

    A failed or stopped reply answers an error with `error_code` and `data` {message_id,
    partial_content} (400 no_api_key, 409 cancelled, 503 service_unavailable, 504 timeouts, else
    502); one still running when the wait ends answers 504 with `data` {message_id}.
    """
    body = parse_body(AiResponseRequest)
    db = get_db()
    chat, member = conversations.conversation_for_member(db, g.user, conversation_id)
    agent = agents.usable_agent(db, g.user, body.agent_id) if body.agent_id is not None else None
    reply = conversations.ask_ai(db, get_redis(), chat, member, g.user, body.message, agent, body.include_context)
    return ok("AI response generated", ai_response_view(reply))
