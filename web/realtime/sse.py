"""Server-Sent Events for one reply: `data:` per token, `[DONE]` at the end, resumable ids.

A token may contain newlines; SSE ends a field at a line break, so each line of a token
becomes its own `data:` line and a spec-following client joins them back with "\\n".

An event's id is `<prefix>:<stream id>`. A stream entry may hold several tokens (see
`workers.reply_run`); all but its last token's event have ids `<prefix>:<stream id>:<n>`
(token n of the entry), so a client resumes exactly where it stopped.
"""
from __future__ import annotations

import json
import queue
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from redis import Redis

from web.auth.tokens import DEACTIVATED, REVOKED
from web.realtime.going_away import SSE_RETRY, is_going_away, registered
from web.realtime.hub import Hub
from web.realtime.lost_events import events_lost
from workers import events
from workers.events import event_message_id

LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Cut:
    """What `delivered` yields last when a stream ends before its reply: the body of its `error` event."""
    body: dict[str, str]


LOGGED_OUT = Cut({"error": "Token has been revoked: the session ended (sign in again to resume the stream)",
                  "error_code": "session_ended"})
ACCOUNT_DEACTIVATED = Cut({"error": "Account deactivated: the session ended", "error_code": "account_deactivated"})
SESSION_CUTS = {REVOKED: LOGGED_OUT, DEACTIVATED: ACCOUNT_DEACTIVATED}  # by why `session_ended` says it ended
ACCESS_LOST = Cut({"error": "Access denied to this chat: you are no longer one of its participants",
                   "error_code": "access_revoked"})


@dataclass(frozen=True)
class StreamChecks:
    """What a stream asks while it waits: a comment after `keepalive_s` of silence, every
    `token_check_s` why its session ended (a key of SESSION_CUTS: the token it was opened with
    revoked by a logout, its account deactivated; None while it has not), and of each event of the
    chat whether it took the chat from the stream's user (`access_lost`)."""
    keepalive_s: float
    token_check_s: float
    session_ended: Callable[[], str | None]
    access_lost: Callable[[dict[str, Any]], bool]


def frame(event_id: str | None, data: str, event: str | None = None) -> str:
    head = (f"id: {event_id}\n" if event_id else "") + (f"event: {event}\n" if event else "")
    return head + "".join(f"data: {line}\n" for line in LINE_BREAK.split(data)) + "\n"


def reply_frames(hub: Hub, redis: Redis, chat_id: int, reply_uuid: str, cursor: str, id_prefix: str,
                 checks: StreamChecks, ended: Callable[[], bool], seen_tokens: int | None = None,
                 resumed: bool = False) -> Iterator[str]:
    """Frames for the reply's events after `cursor`, ending with `data: [DONE]`; first, for a
    `resumed` stream, `event: error` (`events_lost`) when the stream no longer holds `cursor`.

    With `seen_tokens`, the client has the first `seen_tokens` tokens of entry `cursor`:
    the rest of that entry comes first. A comment line every `keepalive_s` of silence keeps
    proxies from closing the stream and lets the server notice a client that has gone; then
    a reply that `ended` (in the database, or deleted with its session) while no end reached
    its stream ends the stream too, as it does at once when the chat's deletion is announced.
    Once its token is revoked, its account deactivated or its user removed from the chat, the
    stream ends with `event: error` (`session_ended`, `account_deactivated`, `access_revoked`)
    and no `[DONE]`.
    """
    inbox: queue.Queue = queue.Queue()
    start = cursor if seen_tokens is None else events.id_before(cursor)
    sub = hub.subscribe(events.chat_stream_key(chat_id), start, inbox)
    try:
        if resumed:  # a new stream's cursor was taken as its reply began
            yield from lost_events_frame(redis, chat_id, cursor)
        for entries in delivered(inbox, checks):
            if isinstance(entries, Cut):
                yield frame(None, json.dumps(entries.body), event="error")
                return
            if entries is None:
                if ended():
                    yield frame(None, "[DONE]")
                    return
                yield ": keep-alive\n\n"
                continue
            for stream_id, event in entries:
                if event.get("type") == events.CHAT_DELETED and ended():
                    yield frame(None, "[DONE]")
                    return
                if event_message_id(event) != reply_uuid:
                    continue
                kind, event_id = event.get("type"), f"{id_prefix}:{stream_id}"
                if kind == events.REPLY_CHUNK:
                    skip = seen_tokens if seen_tokens is not None and stream_id == cursor else 0
                    yield token_frames(event_id, events.chunk_tokens(event), skip)
                elif kind == events.REPLY_ERROR:
                    yield frame(event_id, json.dumps(error_body(event)), event="error")
                    yield frame(None, "[DONE]")
                    return
                elif kind == events.REPLY_COMPLETE:
                    yield frame(event_id, "[DONE]")
                    return
        yield SSE_RETRY  # the process is stopping: the client resumes elsewhere from its last id
    finally:
        sub.close()


def lost_events_frame(redis: Redis, chat_id: int, cursor: str) -> Iterator[str]:
    """The `event: error` frame (without an id, so a reconnect keeps the client's) of a resume whose
    cursor the stream no longer holds; nothing otherwise."""
    if (lost := events_lost(redis, chat_id, cursor)) is not None:
        yield frame(None, json.dumps(lost), event="error")


def delivered(inbox: queue.Queue, checks: StreamChecks) -> Iterator[list | Cut | None]:
    """The batches of stream entries the hub puts in `inbox`, None after `keepalive_s` of silence;
    LOGGED_OUT or ACCOUNT_DEACTIVATED (the last) once the stream's session ended, ACCESS_LOST (the last, after
    the entries before it) at an entry that took the chat from the stream's user.

    Ends when this process is going away (SIGTERM): the stream should then end with `SSE_RETRY`.
    """
    now = time.monotonic()
    quiet_until, next_check = now + checks.keepalive_s, now + checks.token_check_s
    with registered(inbox):
        while True:
            now = time.monotonic()
            if now >= next_check:
                if (reason := checks.session_ended()) is not None:
                    yield SESSION_CUTS[reason]
                    return
                next_check = now + checks.token_check_s
            if now >= quiet_until:
                quiet_until = now + checks.keepalive_s
                yield None
                continue
            try:
                item = inbox.get(timeout=min(quiet_until, next_check) - now)
            except queue.Empty:
                continue
            if is_going_away(item):
                return
            quiet_until = time.monotonic() + checks.keepalive_s
            _, (_, entries) = item
            lost = next((n for n, (_, event) in enumerate(entries) if checks.access_lost(event)), None)
            if lost is None:
                yield entries
                continue
            if lost:
                yield entries[:lost]
            yield ACCESS_LOST
            return


def token_frames(event_id: str, tokens: list[str], skip: int = 0) -> str:
    """One event per token (the first `skip` left out), written together."""
    last = len(tokens) - 1
    return "".join(frame(event_id if n == last else f"{event_id}:{n}", token)
                   for n, token in enumerate(tokens) if n >= skip)


def error_body(event: dict[str, Any]) -> dict[str, Any]:
    return {"error": event.get("error"), "error_code": event.get("error_code")}


def parse_last_event_id(value: str) -> tuple[str, str, str, int | None] | None:
    """`<session>:<reply>:<stream id>[:<token>]` → its parts (the tokens seen of that entry), or None."""
    parts = value.split(":")
    if len(parts) not in (3, 4) or not events.is_valid_id(parts[2]):
        return None
    if len(parts) == 4:
        if not events.is_ascii_number(parts[3]):
            return None
        return parts[0], parts[1], parts[2], int(parts[3]) + 1
    return parts[0], parts[1], parts[2], None
