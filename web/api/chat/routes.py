"""REST endpoints 1-5 and 7 of the chat API, plus adding and removing participants and stopping replies."""
from __future__ import annotations

from flask import g, jsonify

from web.api.chat import bp
from web.api.chat.answers import (ChatHistory, ChatOut, MessageOut, ParticipantList, ParticipantOut,
                                  RemovedParticipant, StopAnswer, TypingSent)
from web.api.chat.schemas import (AddParticipantRequest, CreateChatRequest, HistoryQuery, ListChatsQuery,
                                  SendMessageRequest)
from web.api.chat.serializers import chat_view, participant_view
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import Forbidden, field_error
from web.redis_client import get_redis
from web.services import chat_messages, chats, history, models, participants, replies, users
from workers import events

ROLE_OF_TYPE = {"USER": "user", "SYSTEM": "system"}


@bp.post("/chats")
@responds(200, ChatOut, "The chat created (the caller is its OWNER)")
@login_required
def create_chat():
    """Create a new chat conversation."""
    body = parse_body(CreateChatRequest)
    models.check_model(get_redis(), body.ai_model, ["body", "ai_model"])
    chat = chats.create_chat(get_db(), g.user, **body.model_dump())
    return jsonify(chat_view(chat))


@bp.get("/chats")
@responds(200, list[ChatOut], "The user's active chats, most recent activity first")
@login_required
def list_chats():
    """Retrieve the user's chat conversations."""
    query = parse_query(ListChatsQuery)
    return jsonify([chat_view(c) for c in chats.list_chats(get_db(), g.user, query.limit, query.offset)])


@bp.get("/chats/<chat_id>")
@responds(200, ChatHistory, "The chat, a page of its messages (oldest first) and its participant count")
@login_required
def get_chat(chat_id: str):
    """Get chat history with messages and metadata."""
    query = parse_query(HistoryQuery)
    db = get_db()
    chat, _ = chats.chat_for_member(db, g.user, chat_id)
    messages = history.recent_messages(db, chat, query.limit, query.offset)
    return jsonify({
        "chat": chat_view(chat),
        "messages": [events.message_view(m, chat.uuid, sender) for m, sender in messages],
        "participant_count": participants.participant_count(db, chat),
    })


@bp.post("/chats/<chat_id>/messages")
@responds(200, MessageOut, "The message stored; a USER message starts an AI reply on the chat's WebSocket")
@login_required
def send_message(chat_id: str):
    """Send a message to a chat conversation."""
    body = parse_body(SendMessageRequest)
    db = get_db()
    chat, member = chats.chat_for_member(db, g.user, chat_id)
    if body.message_type == "AI":
        raise Forbidden("Only the assistant can post AI messages")
    chats.check_may_post_as(member, ROLE_OF_TYPE[body.message_type])
    chat_messages.check_client_meta(body.message_metadata)
    parent = chat_messages.shown_message_by_uuid(db, chat.id, body.reply_to_id) if body.reply_to_id else None
    if body.reply_to_id and parent is None:
        raise field_error(["body", "reply_to_id"], "reply_to_id must be a message of this chat")
    message, _ = replies.post_message(db, get_redis(), chat, member, g.user, body.content,
                                      role=ROLE_OF_TYPE[body.message_type], parent=parent, meta=body.message_metadata)
    return jsonify(events.message_view(message, chat.uuid, g.user.uuid))


@bp.post("/chats/<chat_id>/messages/<message_id>/stop")
@responds(200, StopAnswer, "The reply's status; `stop_requested` when it was still streaming")
@login_required
def stop_reply(chat_id: str, message_id: str):
    """Stop an AI reply that is streaming (it ends CANCELLED, keeping its text so far); 403 for a member
    who cannot send messages."""
    db = get_db()
    chat, member = chats.chat_for_member(db, g.user, chat_id)
    reply = replies.stop_reply(db, get_redis(), chat, member, message_id)
    return jsonify({"message_id": reply.uuid, "status": reply.status, "stop_requested": reply.status == "PROCESSING"})


@bp.post("/chats/<chat_id>/typing")
@responds(200, TypingSent, "Sent as `typing_indicator` to the chat's WebSockets")
@login_required
def typing(chat_id: str):
    """Send a typing indicator to the chat's participants, at most one a second per user (more are
    dropped); 403 for a member who cannot send messages."""
    chat, member = chats.chat_for_member(get_db(), g.user, chat_id)
    replies.check_may_send(member)  # a read-only member typing would announce a message that cannot come
    stamp = events.iso_now()
    replies.announce_typing(get_redis(), chat, g.user, typing_event(chat.uuid, g.user, stamp))
    return jsonify({"status": "sent", "timestamp": stamp})


def typing_event(chat_uuid: str, user, stamp: str) -> dict:
    return {"type": events.TYPING, "chat_id": chat_uuid, "user_id": user.uuid,
            "username": user.username, "timestamp": stamp}


@bp.get("/chats/<chat_id>/participants")
@responds(200, ParticipantList, "Every participant whose account is active, with role, permissions and activity")
@login_required
def list_participants(chat_id: str):
    """Get the chat's participants with their status and permissions."""
    db = get_db()
    chat, _ = chats.chat_for_member(db, g.user, chat_id)
    rows = participants.participants_with_counts(db, chat)
    return jsonify({"chat_id": chat.uuid, "participants": [participant_view(*row) for row in rows],
                    "total_participants": len(rows)})


@bp.post("/chats/<chat_id>/participants")
@responds(201, ParticipantOut, "The participant added (announced as `participant_added`)")
@login_required
def add_participant(chat_id: str):
    """Add a user to the chat (the owner or an admin only)."""
    body = parse_body(AddParticipantRequest)
    db = get_db()
    chat, actor = chats.chat_for_member(db, g.user, chat_id)
    user = users.find_by_uuid(db, body.user_id)
    member = participants.add_participant(db, chat, actor, user, body.role, body.can_send_messages, body.can_upload_files)
    view = participant_view(member, user, 0)
    replies.publish(get_redis(), chat, {"type": events.PARTICIPANT_ADDED, "chat_id": chat.uuid,
                                        "participant": view, "timestamp": events.iso_now()})
    return jsonify(view), 201


@bp.delete("/chats/<chat_id>/participants/<user_id>")
@responds(200, RemovedParticipant, "The participant removed (announced as `participant_removed`)")
@login_required
def remove_participant(chat_id: str, user_id: str):
    """Remove a participant (`user_id`: their UUID). Any participant may leave, except the owner
    (400: delete or archive the chat instead); the owner removes anyone else, an admin members only
    (403 otherwise); 404 for a user who is not a participant. Their messages stay in the history;
    their open sockets on the chat close 4403."""
    db = get_db()
    chat, actor = chats.chat_for_member(db, g.user, chat_id)
    participants.remove_participant(db, chat, actor, users.find_by_uuid(db, user_id))
    replies.publish(get_redis(), chat, {"type": events.PARTICIPANT_REMOVED, "chat_id": chat.uuid,
                                        "user_id": user_id, "timestamp": events.iso_now()})
    return jsonify({"chat_id": chat.uuid, "user_id": user_id, "removed": True})
