"""001 sessions: a session is a chat; starting replies from OpenAI-style message lists."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from sqlalchemy import delete, false, func, or_, select
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from models.base import new_uuid
from web.errors import ApiError, Forbidden, NotFound
from web.services import chats, replies, resends, upstreams
from workers import events, leases, runtime

SETTINGS = {"model": "ai_model", "temperature": "temperature", "max_tokens": "max_tokens"}  # request field: column
MANAGERS_ONLY_ROLES = ("system", "assistant")  # earlier messages only the owner or admins may send
ARCHIVED_SESSION = "Chat session is archived: unarchive it to continue it"


def session_for(db: Session, user: User, session_id: int) -> tuple[Chat, Participant]:
    """The user's session, archived ones too (read, resumed, deleted); 404 (never 403) when it is not theirs."""
    try:
        return chats.chat_for_member(db, user, session_id, chats.OPEN)
    except ApiError as exc:
        raise NotFound("Chat session not found") from exc


def session_to_continue(db: Session, user: User, session_id: int) -> tuple[Chat, Participant]:
    """The user's session to add messages, settings or files to: 400 when it is archived (on 002
    or 003), as those surfaces refuse posts to it, rather than a 404 as if it were gone."""
    chat, member = session_for(db, user, session_id)
    chats.check_active(chat, ARCHIVED_SESSION)
    return chat, member


def start(db: Session, redis: Redis, user: User, body: Any) -> tuple[Chat, Message, str]:
    """Create or continue a session, store the request's new messages, start the reply.

    With `session_id`, the messages may resend the session's conversation, or a window of it (OpenAI-style
    clients do every turn): only what follows it is stored (`resends.new_messages`).
    Every check (the messages, the member's rights, an upstream key, a concurrent-stream slot)
    comes before anything is stored, so a refused request leaves no session, setting or message
    behind (a client retrying it would otherwise store them twice).
    Returns the chat, the AI message and the stream cursor taken before the reply began.
    """
    chat, member = session_to_continue(db, user, body.session_id) if body.session_id is not None else (None, None)
    new = checked_new_messages(db, user, chat, member, body)
    upstreams.key_for_reply(db, user)
    reply_uuid = new_uuid()
    replies.take_stream_slot(redis, user, reply_uuid)
    try:
        chat, member = store_settings(db, user, chat, member, body)
        if body.session_id is not None:
            new = compared_under_lock(db, user, chat, member, body)
        reply, cursor = post_new(db, redis, chat, member, user, new, reply_uuid)
    except Exception as exc:
        leases.release(redis, leases.replies_key(user.id), reply_uuid)
        if isinstance(exc, NotFound):  # deleted while the request ran (chats.lock_chat)
            raise NotFound("Chat session not found") from exc
        raise
    return chat, reply, cursor


def checked_new_messages(db: Session, user: User, chat: Chat | None, member: Participant | None,
                         body: Any) -> resends.NewMessages:
    """The request's new messages (all of them for a new session), checked: blank content 400,
    a member's rights 403."""
    if chat is None:
        new = resends.NewMessages(body.messages)
    else:
        new = resends.new_messages(db, chat, user.id, body.messages)
    for message in new.messages:
        replies.check_content(message.content)
    if member is not None:  # a new session's sender is its owner, who may do all of it
        check_member_request(chat, member, body, new.messages)
    return new


def compared_under_lock(db: Session, user: User, chat: Chat, member: Participant, body: Any) -> resends.NewMessages:
    """`checked_new_messages` again under the chat's write lock, held by the transaction that then
    stores them (`post_new`): of two identical requests at once (a double submit, a retry racing
    the first), the second sees the first one's messages and adds nothing."""
    chats.lock_chat(db, chat, missing="Chat session not found", statuses=chats.VISIBLE, archived=ARCHIVED_SESSION)
    try:
        return checked_new_messages(db, user, chat, member, body)
    except Exception:
        db.rollback()
        raise


def post_new(db: Session, redis: Redis, chat: Chat, member: Participant, user: User,
             new: resends.NewMessages, reply_uuid: str) -> tuple[Message, str]:
    """Store the new messages and start the reply to the last one (or answer `new.answer_again`
    again), in one transaction; returns the reply and the stream cursor taken before it began."""
    if new.answer_again is not None:
        cursor = events.last_event_id(redis, chat.id)
        return replies.answer_again(db, redis, chat, member, user, new.answer_again, reply_uuid,
                                    archived=ARCHIVED_SESSION), cursor
    *earlier, last = new.messages
    cursor = events.last_event_id(redis, chat.id)
    _, reply = replies.post_message(db, redis, chat, member, user, last.content, want_reply=True,
                                    reply_uuid=reply_uuid, archived=ARCHIVED_SESSION,
                                    earlier=[(message.role, message.content) for message in earlier])
    return reply, cursor


def check_member_request(chat: Chat, member: Participant, body: Any, new_messages: list[Any]) -> None:
    """403 before anything is stored: a member who may not send, a new system or assistant message
    from someone other than the owner or an admin, or a change of the session's settings."""
    replies.check_may_send(member)
    for message in new_messages:
        chats.check_may_post_as(member, message.role, MANAGERS_ONLY_ROLES)
    check_may_change(chat, member, {
        name: getattr(body, name) for name in SETTINGS if name in body.model_fields_set})


def check_may_change(chat: Chat, member: Participant, wanted: dict[str, Any]) -> None:
    """The model, temperature and max_tokens are the session's, shared by all its members: only
    its owner or admins change them (403). Anyone may send the values the session already has."""
    if chats.manages(member):
        return
    current = {name: replies.chat_model(chat) if name == "model" else getattr(chat, SETTINGS[name])
               for name in wanted}
    changed = [name for name, value in wanted.items() if value is not None and current[name] != value]
    if changed:
        raise Forbidden(f"Only the session's owner or admins can change its settings ({', '.join(changed)})")


def store_settings(db: Session, user: User, chat: Chat | None, member: Participant | None,
                   body: Any) -> tuple[Chat, Participant]:
    """Create the session with the request's settings, or set the ones the request names on the
    session (owner, admins): a setting left out keeps the session's, for every member alike."""
    settings = {SETTINGS[name]: getattr(body, name) for name in SETTINGS if getattr(body, name) is not None}
    if chat is None:
        first = next((m.content for m in body.messages if m.role == "user"), "New chat")
        chat = chats.create_chat(db, user, title=chats.title_from(first), **settings)
        return chat, chats.participant(db, chat, user)
    if chats.manages(member):  # others were refused unless their settings are the session's
        named = {SETTINGS[name]: getattr(body, name) for name in SETTINGS.keys() & body.model_fields_set
                 if getattr(body, name) is not None}
        if named:
            write_settings(db, chat, named)
    return chat, member


def switch_model(db: Session, chat: Chat, member: Participant, model: str) -> None:
    """Set the session's model (its owner or admins: 403 for other members)."""
    check_may_change(chat, member, {"model": model})
    write_settings(db, chat, {"ai_model": model})


def write_settings(db: Session, chat: Chat, values: dict[str, Any]) -> None:
    """Store `values` on the session and commit; a session archived since the request read it is
    400 (deleted: 404), as a request sent after that would be answered, and keeps its settings."""
    chats.lock_chat(db, chat, missing="Chat session not found", statuses=chats.VISIBLE, archived=ARCHIVED_SESSION)
    chats.write_unless_deleted(db, chat, values, missing="Chat session not found")


def transcript(db: Session, chat_ids: list[int]) -> dict[int, list[dict[str, str]]]:
    """Role and content of each chat's visible messages, oldest first, in one query."""
    found: dict[int, list[dict[str, str]]] = {chat_id: [] for chat_id in chat_ids}
    rows = db.execute(
        select(Message.chat_id, Message.role, Message.content)
        .where(Message.chat_id.in_(chat_ids), Message.hidden.is_(False)).order_by(Message.id)
    )
    for chat_id, role, content in rows:
        found[chat_id].append({"role": role, "content": content})
    return found


def history(db: Session, user: User, page: int, page_size: int, start_date: datetime | None,
            end_date: datetime | None, model: str | None) -> tuple[int, list[Chat]]:
    query = (select(Chat).join(Participant, Participant.chat_id == Chat.id)
             .where(Participant.user_id == user.id, Chat.status.in_(chats.VISIBLE)))
    if start_date is not None:
        query = query.where(Chat.created_at >= start_date)
    if end_date is not None:
        query = query.where(Chat.created_at <= end_date)
    if model:  # the model its replies use: a chat made without one uses the default
        uses_default = Chat.ai_model.is_(None) if model == runtime.current().settings.default_ai_model else false()
        query = query.where(or_(Chat.ai_model == model, uses_default))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    page_rows = db.scalars(query.order_by(Chat.last_activity_at.desc(), Chat.id.desc())
                           .limit(page_size).offset((page - 1) * page_size))
    return total, list(page_rows)


def delete_session(db: Session, redis: Redis, user: User, session_id: int) -> None:
    """Delete for good, with messages and files; only the owner may (404 for anyone else)."""
    chat, _ = session_for(db, user, session_id)
    delete_owned_chat(db, redis, user, chat)


def delete_owned_chat(db: Session, redis: Redis, user: User, chat: Chat) -> None:
    """Hard delete (001 and 004 document one): the chat, its messages, files and event stream."""
    if chat.owner_id != user.id:
        raise NotFound("Chat session not found")
    chats.lock_chat(db, chat, missing="Chat session not found")  # the chat before its messages, as writers do
    running = replies.stop_chat_replies(db, redis, chat)
    db.execute(delete(Message).where(Message.chat_id == chat.id))
    db.delete(chat)
    db.commit()
    for reply_uuid, asker in running:  # a job not taken yet finds no reply and would keep its slot
        if asker is not None:
            leases.release(redis, leases.replies_key(asker), reply_uuid)
    redis.delete(events.chat_stream_key(chat.id))
    replies.close_chat_sockets(redis, chat)  # the stream then holds only that event, until it expires


def reply_usage(reply: Message) -> dict[str, int | None]:
    return {"prompt_tokens": reply.tokens_in, "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_used}

