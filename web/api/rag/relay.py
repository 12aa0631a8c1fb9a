"""SSE for a RAG reply (004): unnamed events whose JSON says its `type`, each with a resumable id.

The document's client is `EventSource(...).onmessage`, which only receives unnamed events,
so every event is a plain `data:` line. Frames come from the chat's event stream,
filtered to one reply:

    rag_status            → {"type": "status", "status"}
    ai_response_start     → {"type": "status", "status": "Generating response"}
    ai_response_chunk     → {"type": "token", "token"}
    ai_response_complete  → {"type": "citation", ...} per source,
                            then {"type": "done", "content", "citations", "status"}
    ai_error              → {"type": "error", "error", "error_code"}, then done

A resume from an entry the capped stream no longer holds first gets an error event
`events_lost` (see web.realtime.lost_events).

An id is `<reply uuid>:<stream entry id>:<n>`: `n` numbers the frames made from one entry,
`s` marks the session event and `end` the done event (after which a reconnect gets 204).
"""
from __future__ import annotations

import json
import queue
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from redis import Redis
from sqlalchemy import select

from models import Message
from web.realtime.going_away import SSE_RETRY
from web.realtime.hub import Hub
from web.realtime.lost_events import events_lost
from web.realtime.sse import Cut, StreamChecks, delivered, frame
from web.services.rag_sessions import citation
from workers import events, runtime
from workers.jobs.retrieval import RAG_STATUS

SESSION, END = "s", "end"
GENERATING = "Generating response"


@dataclass(frozen=True)
class Position:
    reply_uuid: str
    stream_id: str
    index: str


def parse_event_id(value: str) -> Position | None:
    """A `Last-Event-ID` of this API, or None when it is not one."""
    parts = value.split(":")
    if len(parts) != 3 or not events.is_valid_id(parts[1]):
        return None
    if parts[2] not in (SESSION, END) and not events.is_ascii_number(parts[2]):
        return None
    try:
        uuid.UUID(parts[0])
    except ValueError:
        return None
    return Position(*parts)


def event_id(reply_uuid: str, stream_id: str, index: str) -> str:
    return f"{reply_uuid}:{stream_id}:{index}"


def json_frame(frame_id: str, payload: dict[str, Any]) -> str:
    return frame(frame_id, json.dumps(payload, separators=(",", ":")))


def final_state(reply_uuid: str) -> dict[str, Any] | None:
    """The stored end of the reply, or None while it is still being generated."""
    with runtime.session() as db:
        reply = db.scalar(select(Message).where(Message.uuid == reply_uuid))
        if reply is None:
            return {"content": "", "sources": [], "status": "DELETED"}
        if reply.status == "PROCESSING":
            return None
        return {"content": reply.content, "sources": reply.sources or [], "status": reply.status}


def done(state: dict[str, Any]) -> dict[str, Any]:
    return {"type": "done", "content": state["content"], "citations": [citation(s) for s in state["sources"]],
            "status": state["status"]}


def translate(event: dict[str, Any], final: Callable[[], dict[str, Any] | None]) -> list[tuple[str, dict[str, Any]]]:
    """The (index, payload) frames one stream event of the reply becomes."""
    kind = event.get("type")
    if kind == RAG_STATUS:
        return [("0", {"type": "status", "status": event["status"]})]
    if kind == events.REPLY_START:
        return [("0", {"type": "status", "status": GENERATING})]
    if kind == events.REPLY_CHUNK:  # one token frame per token, numbered within the entry
        return [(str(n), {"type": "token", "token": token}) for n, token in enumerate(events.chunk_tokens(event))]
    if kind not in events.REPLY_END_TYPES:
        return []
    state = final() or {"content": event.get("message", {}).get("content", ""), "sources": [],
                        "status": event.get("message", {}).get("status", "FAILED")}
    # A failed reply's partial text may cite too: its citations come before its error, as done lists them.
    cites = [(str(n), {"type": "citation", **citation(s), "relevance_score": s.get("relevance_score"), "marker": n + 1})
             for n, s in enumerate(state["sources"])]
    if kind == events.REPLY_ERROR:
        error = {"type": "error", "error": event.get("error"), "error_code": event.get("error_code")}
        return cites + [(str(len(cites)), error), (END, done(state))]
    return cites + [(END, done(state))]


def later(index: str, seen: str) -> bool:
    return index == END or int(index) > int(seen)


def reply_frames(hub: Hub, redis: Redis, chat_id: int, reply_uuid: str, cursor: str, *, seen_index: str | None,
                 lead: list[str], checks: StreamChecks, resumed: bool) -> Iterator[str]:
    """Frames of the reply after `cursor` (and after frame `seen_index` of that entry), ending with done.

    A comment every `keepalive_s` of silence; at each, a reply found ended in the database
    whose end is not in the stream (expired, or Redis lost it) ends the stream from the record, as
    does the chat's deletion when it is announced.
    When a `resumed` stream's `cursor` is no longer held (the stream is capped), an `error` event
    (`events_lost`) comes before the replay; a done built from the record holds the whole reply and needs none.
    Once the token the stream was opened with is revoked, its account deactivated, or its user removed
    from the chat, an `error` event (`session_ended`, `account_deactivated`, `access_revoked`) ends it.
    """
    key = events.chat_stream_key(chat_id)

    def final() -> dict[str, Any] | None:
        return final_state(reply_uuid)

    yield from lead
    if seen_index is not None:
        for stream_id, fields in redis.xrange(key, min=cursor, max=cursor):
            for index, payload in translate(events.decode(fields), final):
                if later(index, seen_index):
                    yield json_frame(event_id(reply_uuid, cursor, index), payload)
                    if index == END:
                        return
    state = final()
    if state is not None and not events.reply_events_after(redis, chat_id, reply_uuid, cursor):
        yield json_frame(event_id(reply_uuid, cursor, END), done(state))
        return
    inbox: queue.Queue = queue.Queue()
    sub = hub.subscribe(key, cursor, inbox)
    last = cursor
    try:
        lost = events_lost(redis, chat_id, cursor) if resumed else None
        if lost is not None:  # no id: a reconnect keeps the client's
            yield frame(None, json.dumps({"type": "error", **lost}, separators=(",", ":")))
        for entries in delivered(inbox, checks):
            if isinstance(entries, Cut):  # no done: the reply is no longer this client's
                yield frame(None, json.dumps({"type": "error", **entries.body}, separators=(",", ":")))
                return
            if entries is None:
                state = final()
                if state is not None:
                    yield json_frame(event_id(reply_uuid, last, END), done(state))
                    return
                yield ": keep-alive\n\n"
                continue
            for stream_id, event in entries:
                if event.get("type") == events.CHAT_DELETED and (state := final()) is not None:
                    yield json_frame(event_id(reply_uuid, stream_id, END), done(state))  # DELETED with it
                    return
                if events.event_message_id(event) != reply_uuid:
                    continue
                last = stream_id
                for index, payload in translate(event, final):
                    yield json_frame(event_id(reply_uuid, stream_id, index), payload)
                    if index == END:
                        return
        yield SSE_RETRY  # the process is stopping: the client resumes elsewhere from its last id
    finally:
        sub.close()
