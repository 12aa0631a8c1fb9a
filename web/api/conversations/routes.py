"""Conversations: list, create, get, update and delete (002 endpoints 1, 2, 3, 7 and 8)."""
from __future__ import annotations

from flask import g

from web.api.conversations import bp
from web.api.conversations.answers import ConversationDetails, ConversationPage, ConversationRef, Envelope
from web.api.conversations.envelope import found, ok
from web.api.conversations.schemas import CreateConversationRequest, ListConversationsQuery, UpdateConversationRequest
from web.api.conversations.serializers import conversation_details, conversation_view
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.auth.tokens import login_required
from web.db import get_db
from web.redis_client import get_redis
from web.services import agents, conversations


@bp.get("/conversations")
@responds(200, Envelope[ConversationPage])
@login_required
def list_conversations():
    """List the user's conversations (active, or archived with `archived=true`), pinned first, newest activity next."""
    query = parse_query(ListConversationsQuery)
    page = conversations.list_conversations(get_db(), g.user, query.limit, query.offset, query.archived, query.pinned)
    return ok(found(page.total, "conversation"), {
        "conversations": [conversation_view(row) for row in page.rows],
        "total": page.total, "limit": query.limit, "offset": query.offset,
    })


@bp.post("/conversations")
@responds(201, Envelope[ConversationRef], "Created")
@login_required
def create_conversation():
    """Create a conversation, optionally served by one of the user's (or a public) agents."""
    body = parse_body(CreateConversationRequest)
    db = get_db()
    agent = agents.usable_agent(db, g.user, body.agent_id) if body.agent_id is not None else None
    chat = conversations.create_conversation(db, g.user, body.title, agent, body.conversation_type, body.is_pinned)
    return ok("Conversation created successfully", {"conversation_id": chat.id}, 201)


@bp.get("/conversations/<int:conversation_id>")
@responds(200, Envelope[ConversationDetails])
@login_required
def get_conversation(conversation_id: int):
    """A conversation with its unread count and session history."""
    db = get_db()
    chat, member = conversations.conversation_for_member(db, g.user, conversation_id)
    row = conversations.conversation_row(db, chat, member, g.user)
    return ok("Conversation found", conversation_details(row, conversations.session_history(db, chat)))


@bp.put("/conversations/<int:conversation_id>")
@responds(200, Envelope[ConversationRef])
@login_required
def update_conversation(conversation_id: int):
    """Rename, pin, archive or change the agent of a conversation (its owner or admins)."""
    body = parse_body(UpdateConversationRequest)
    db = get_db()
    chat, member = conversations.conversation_for_member(db, g.user, conversation_id)
    conversations.update_conversation(db, get_redis(), g.user, chat, member, body.changes())
    return ok("Conversation updated successfully", {"conversation_id": chat.id})


@bp.delete("/conversations/<int:conversation_id>")
@responds(200, Envelope[ConversationRef])
@login_required
def delete_conversation(conversation_id: int):
    """Delete a conversation (its owner): it disappears from every surface."""
    db = get_db()
    chat, member = conversations.conversation_for_member(db, g.user, conversation_id)
    conversations.delete_conversation(db, get_redis(), chat, member)
    return ok("Conversation deleted successfully", {"conversation_id": chat.id})
