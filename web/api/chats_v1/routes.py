"""REST endpoints of the chats API (003): chats, messages, message status and reactions."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy.orm import Session

from models import Message
from web.api.chats_v1 import bp
from web.api.chats_v1.answers import ChatOut, MessageOut
from web.api.chats_v1.schemas import (AddReactionRequest, CreateChatRequest, ListChatsQuery, ListMessagesQuery,
                                      SendMessageRequest, UpdateChatStatusRequest, UpdateMessageStatusRequest,
                                      reaction_named)
from web.api.chats_v1.serializers import chat_fields, chat_view, message_role, message_view
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.auth.tokens import login_required
from web.db import get_db
from web.redis_client import get_redis
from web.services import chat_messages, chats, message_status, reactions, replies


def shown(db: Session, messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as this surface shows them, with their reactions."""
    found = reactions.reactions_for(db, [m.id for m in messages])
    return [message_view(m, found.get(m.id, {})) for m in messages]


@bp.post("/chats")
@responds(200, ChatOut)
@login_required
def create_chat():
    """Create a chat owned by the caller (its AI is off: posting starts no reply)."""
    body = parse_body(CreateChatRequest)
    chat = chats.create_chat(get_db(), g.user, **chat_fields(**body.model_dump()))
    return jsonify(chat_view(chat))


@bp.get("/chats")
@responds(200, list[ChatOut])
@login_required
def list_chats():
    """The caller's ACTIVE and ARCHIVED chats, most recent activity first."""
    query = parse_query(ListChatsQuery)
    statuses = (query.status,) if query.status else chats.OPEN
    return jsonify([chat_view(c) for c in chats.list_chats(get_db(), g.user, query.limit, query.skip, statuses)])


@bp.get("/chats/<int:chat_id>")
@responds(200, ChatOut)
@login_required
def get_chat(chat_id: int):
    """A chat the caller takes part in, ACTIVE or ARCHIVED."""
    chat, _ = chats.chat_for_member(get_db(), g.user, chat_id, chats.OPEN)
    return jsonify(chat_view(chat))


@bp.patch("/chats/<int:chat_id>/status")
@responds(200, ChatOut)
@login_required
def update_chat_status(chat_id: int):
    """Archive or reactivate a chat (its owner or an admin), or delete it (its owner only; DELETED is final)."""
    body = parse_body(UpdateChatStatusRequest)
    db = get_db()
    chat, member = chats.chat_for_member(db, g.user, chat_id, chats.OPEN)
    return jsonify(chat_view(replies.change_chat_status(db, get_redis(), chat, member, body.status)))


@bp.post("/chats/<int:chat_id>/messages")
@responds(200, MessageOut)
@login_required
def send_message(chat_id: int):
    """Store a message as sent (no AI reply is started)."""
    body = parse_body(SendMessageRequest)
    db = get_db()
    chat, member = chats.chat_for_member(db, g.user, chat_id, chats.OPEN)
    role, content_type = message_role(body.is_user, body.message_type)
    message = chat_messages.record_message(db, get_redis(), chat, member, g.user, body.content, role=role,
                                           content_type=content_type, status=body.status,
                                           parent_id=body.parent_message_id, meta=body.message_metadata)
    return jsonify(message_view(message, {}))


@bp.get("/chats/<int:chat_id>/messages")
@responds(200, list[MessageOut])
@login_required
def list_messages(chat_id: int):
    """The newest messages of a chat (or of one thread), oldest first; `skip` pages backwards."""
    query = parse_query(ListMessagesQuery)
    db = get_db()
    chat, _ = chats.chat_for_member(db, g.user, chat_id, chats.OPEN)
    return jsonify(shown(db, chat_messages.list_messages(db, chat, query.limit, query.skip, query.thread_id)))


@bp.patch("/messages/<int:message_id>/status")
@responds(200, MessageOut)
@login_required
def update_message_status(message_id: int):
    """Move a message's status forward (SENDING → SENT → DELIVERED → READ, or FAILED)."""
    body = parse_body(UpdateMessageStatusRequest)
    db = get_db()
    message, chat, member = chat_messages.message_for_member(db, g.user, message_id)
    message = message_status.change_status(db, get_redis(), chat, member, message, g.user, body.status)
    return jsonify(shown(db, [message])[0])


@bp.post("/messages/<int:message_id>/reactions")
@responds(200, MessageOut)
@login_required
def add_reaction(message_id: int):
    """React to a message (adding the same reaction again changes nothing; 400 past one's 20th on it)."""
    body = parse_body(AddReactionRequest)
    db = get_db()
    message, chat, _ = chat_messages.message_for_member(db, g.user, message_id)
    reactions.add_reaction(db, get_redis(), chat, message, g.user, body.reaction)
    return jsonify(shown(db, [message])[0])


@bp.delete("/messages/<int:message_id>/reactions/<reaction>")
@responds(200, MessageOut)
@login_required
def remove_reaction(message_id: int, reaction: str):
    """Take one's reaction back (404 when one had not made it); named as added, so trimmed too."""
    db = get_db()
    message, chat, _ = chat_messages.message_for_member(db, g.user, message_id)
    reactions.remove_reaction(db, get_redis(), chat, message, g.user, reaction_named(reaction))
    return jsonify(shown(db, [message])[0])
