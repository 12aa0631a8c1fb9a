"""The event protocol between workers, web processes and the relays.

Every event of a chat (new messages, typing, reply start/chunks/end, errors) is one
entry in that chat's Redis Stream. A stream entry id (``<ms>-<seq>``) is the event id a
client resumes from (WebSocket ``last_event_id``, SSE ``Last-Event-ID``). Streams are
capped and expire; PostgreSQL stays the record.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from redis import Redis

NEW_MESSAGE = "new_message"
TYPING = "typing_indicator"
REPLY_START = "ai_response_start"
REPLY_CHUNK = "ai_response_chunk"
REPLY_COMPLETE = "ai_response_complete"
REPLY_ERROR = "ai_error"
PARTICIPANT_ADDED = "participant_added"
# Also closes the removed user's sockets on the chat, if they are still no participant (4403), and
# ends their streams of its replies (001, 004: access_revoked).
PARTICIPANT_REMOVED = "participant_removed"
CHAT_DELETED = "chat_deleted"  # the chat is gone on every surface: its open sockets close (never sent)
# The chat was archived: sockets of a surface that hides archived chats (000) close if it still is (never sent).
CHAT_ARCHIVED = "chat_archived"
REPLY_END_TYPES = (REPLY_COMPLETE, REPLY_ERROR)
# On the events of an exchange not kept (000's save_to_history: false): the asker's user uuid.
# Only that user's sockets relay them; the field itself is never sent.
ONLY_FOR = "only_for"

FIELD = "e"


def addressed_to(event: dict[str, Any], user_uuid: str) -> dict[str, Any] | None:
    """The event as `user_uuid`'s clients get it: None when it is another user's only."""
    audience = event.get(ONLY_FOR)
    if audience is None:
        return event
    return {k: v for k, v in event.items() if k != ONLY_FOR} if audience == user_uuid else None


def removes(event: dict[str, Any], user_uuid: str) -> bool:
    """Whether the event says `user_uuid` left or was removed from the chat."""
    return event.get("type") == PARTICIPANT_REMOVED and event.get("user_id") == user_uuid


def chat_stream_key(chat_id: int) -> str:
    return f"parley:chat:{chat_id}:events"


def stop_key(message_uuid: str) -> str:
    return f"parley:reply:{message_uuid}:stop"


def typing_key(chat_id: int, user_id: int) -> str:
    return f"parley:chat:{chat_id}:typing:{user_id}"


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def publish(
    redis: Redis, chat_id: int, event: dict[str, Any], *, maxlen: int = 10_000, ttl_s: int = 3600
) -> str:
    """Append one event to the chat's stream; returns its event id.

    The expiry is renewed with every event but the reply's chunks (the hot path): a reply
    starts and ends with an event that renews it.
    """
    key = chat_stream_key(chat_id)
    payload = entry(event)
    if event.get("type") == REPLY_CHUNK:
        event_id = redis.xadd(key, payload, maxlen=maxlen, approximate=True)
    else:
        with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, payload, maxlen=maxlen, approximate=True)
            pipe.expire(key, ttl_s)
            event_id, _ = pipe.execute()
    return event_id.decode() if isinstance(event_id, bytes) else event_id


def publish_chunks(redis: Redis, chunks: list[tuple[int, dict[str, Any], int]]) -> list[Exception | None]:
    """Append reply chunks `(chat_id, event, maxlen)` in one round trip; the error of each, or None."""
    with redis.pipeline(transaction=False) as pipe:
        for chat_id, event, maxlen in chunks:
            pipe.xadd(chat_stream_key(chat_id), entry(event), maxlen=maxlen, approximate=True)
        results = pipe.execute(raise_on_error=False)
    return [r if isinstance(r, Exception) else None for r in results]


def entry(event: dict[str, Any]) -> dict[str, str]:
    """The stream entry's fields for an event (`decode` reads it back)."""
    return {FIELD: json.dumps(event, separators=(",", ":"))}


def decode(fields: dict) -> dict[str, Any]:
    raw = fields.get(FIELD) or fields.get(FIELD.encode())
    return json.loads(raw)


def event_message_id(event: dict[str, Any]) -> str | None:
    """The message an event is about (`message_id`, or the id of its `message`)."""
    if "message_id" in event:
        return event["message_id"]
    message = event.get("message")
    return message.get("id") if isinstance(message, dict) else None


def chunk_tokens(event: dict[str, Any]) -> list[str]:
    """The tokens of a reply chunk: a worker sends several together (`tokens`) when they come fast."""
    return event.get("tokens") or [event["chunk"]]


def parse_id(event_id: str) -> tuple[int, int]:
    """Order stream ids numerically; ``"0"`` and ``"123"`` are accepted as ``N-0``."""
    ms, _, seq = str(event_id).partition("-")
    return int(ms), int(seq or 0)


MAX_ID_PART = 2**64 - 1  # both parts of a Redis stream id are unsigned 64-bit integers


def is_ascii_number(text: str) -> bool:
    """1-20 ASCII digits, which int() always reads: a part of a client's event id or cursor.

    str.isdigit() alone also takes digits such as "²" (a header byte 0xB2), which int() refuses.
    """
    return text.isascii() and text.isdigit() and len(text) <= 20


def is_valid_id(event_id: str) -> bool:
    """An id Redis takes as a stream position: ``N`` or ``N-M``, ASCII digits, each part below 2**64.

    Checking the parse alone let a larger number through to Redis, which refuses it with an error.
    """
    ms, dash, seq = str(event_id).partition("-")
    parts = (ms, seq) if dash else (ms,)
    return all(is_ascii_number(part) and int(part) <= MAX_ID_PART for part in parts)


def last_event_id(redis: Redis, chat_id: int) -> str:
    """The id of the newest event of a chat, or ``"0-0"`` when there is none."""
    newest = redis.xrevrange(chat_stream_key(chat_id), count=1)
    if not newest:
        return "0-0"
    event_id = newest[0][0]
    return event_id.decode() if isinstance(event_id, bytes) else event_id


def oldest_event_id(redis: Redis, chat_id: int) -> str | None:
    """The id of the oldest event a chat's stream still holds (it is capped), or None when it holds none."""
    oldest = redis.xrange(chat_stream_key(chat_id), count=1)
    if not oldest:
        return None
    event_id = oldest[0][0]
    return event_id.decode() if isinstance(event_id, bytes) else event_id


def id_before(event_id: str) -> str:
    """The greatest possible stream id before `event_id`, to read from it inclusively."""
    ms, seq = parse_id(event_id)
    if seq:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-18446744073709551615" if ms else "0-0"


def id_before_ms(event_id: str, window_ms: int) -> str:
    ms, _ = parse_id(event_id)
    return f"{max(ms - window_ms, 0)}-0"


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


MESSAGE_TYPES = {"user": "USER", "assistant": "AI", "system": "SYSTEM"}


def message_view(message: Any, chat_uuid: str, sender_uuid: str | None) -> dict[str, Any]:
    """A message as the WebSocket events and the UUID chat surface show it. An AI message has no
    sender (the document's examples), also a line a user typed as the AI (002's agent lines, 001's
    history), as the chats API (003) shows it."""
    return {
        "id": message.uuid,
        "chat_id": chat_uuid,
        "sender_id": None if message.role == "assistant" else sender_uuid,
        "content": message.content,
        "message_type": MESSAGE_TYPES[message.role],
        "ai_model_used": message.model,
        "tokens_used": message.tokens_used,
        "processing_time_ms": message.processing_time_ms,
        "status": message.status,
        "created_at": iso(message.created_at),
        "is_edited": message.is_edited,
    }


def reply_events_after(redis: Redis, chat_id: int, reply_uuid: str, cursor: str) -> bool:
    """Whether the reply has events in its chat's stream after `cursor`.

    A reply ended in the database with none left after a client's cursor is over for that
    client. With some left, they must still be sent: the worker stores the reply before it
    publishes its end, so a reconnect in between would otherwise lose its last tokens.
    """
    return any(event_message_id(decode(fields)) == reply_uuid
               for _, fields in redis.xrange(chat_stream_key(chat_id), min=f"({cursor}", max="+"))
