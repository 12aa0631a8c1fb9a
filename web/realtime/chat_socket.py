"""Relay a chat's event stream to one WebSocket client, and its messages to the app.

Only this handler's loop writes to the socket (`ws.send` is not thread-safe); a reader
thread turns client frames into inbox items next to the hub's events, at most the frame
budget's `most_waiting` at a time (see `_read_client`).
The relay adds `event_id` (resume cursor), `server_time` and, on chunks, the reply's `full_content`.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from simple_websocket import ConnectionClosed

from web.api.parsing import storable
from web.observability.metrics import web_metrics
from web.realtime.frame_budget import (ABUSE, ALLOWED, CLOSE_CODE as TOO_MANY_FRAMES_CODE, REFUSED, RESUME_COST,
                                       FrameBudget)
from web.realtime.going_away import CLOSE_CODE as GOING_AWAY_CODE, GOING_AWAY, registered
from web.realtime.hub import Entry, Hub
from web.realtime.lost_events import events_lost
from web.realtime.presence import Presence
from workers import events
from workers.events import event_message_id

PING_TYPES = ("ping", "heartbeat")
IDLE_CLOSE_CODE = 4408
SESSION_ENDED_CLOSE_CODE = 4401
GONE_CLOSE_CODE = 4404
WORKER_ONLY = ("offset", "tokens")  # chunk fields the socket documents do not have


@dataclass
class SocketContext:
    chat_id: int
    chat_uuid: str
    user_uuid: str
    username: str
    idle_timeout_s: float
    replay_window_ms: int
    live_reply_ids: Callable[[], set[str]]
    # Why the socket's session has ended since it opened (its token revoked, its account deactivated:
    # the close reason), None while it has not; asked every token_check_s.
    session_ended: Callable[[], str | None]
    token_check_s: float
    frames_per_s: int  # client frames a second (see web.realtime.frame_budget)
    # How a socket of this user opened now would be refused (close code, reason), None while it would
    # not; asked when the chat's stream says the user was removed (they may have been added back since).
    refusal: Callable[[], tuple[int, str] | None]
    actions: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = field(default_factory=dict)
    # A surface's own view of an event (ids, names); None drops the event for that surface.
    translate: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    # On a surface that hides archived chats (000): whether the chat is hidden now, asked when it
    # was archived (a socket resumed from before an archiving undone since reads its event too).
    chat_hidden: Callable[[], bool] | None = None


class ChatSocket:
    def __init__(self, ws: Any, hub: Hub, redis: Any, ctx: SocketContext) -> None:
        self.ws = ws
        self.hub = hub
        self.redis = redis
        self.ctx = ctx
        self.inbox: queue.Queue = queue.Queue()
        self.sub = None
        self.suppress_until = "0-0"
        self.replay: set[str] = set()
        self.content: dict[str, str] = {}
        self.backlog_end = 0  # see `subscribe`
        self.budget = FrameBudget(ctx.frames_per_s)
        self.waiting = threading.Semaphore(self.budget.most_waiting)  # client frames the loop has yet to take
        self.dropped = 0  # frames the reader dropped as too many were waiting (only the reader writes it)
        self.dropped_told = 0  # how many of those the client was told of (only the loop writes it)

    def send(self, payload: dict[str, Any], server_time: str | None = None) -> None:
        payload["server_time"] = server_time or events.iso_now()
        self.ws.send(json.dumps(payload))

    def run(self, cursor: str | None, presence: Presence) -> None:
        presence.opened(self.ctx.chat_uuid)
        gauge = web_metrics().websockets
        gauge.inc()
        try:
            with registered(self.inbox):
                self._run(cursor)
        finally:
            gauge.dec()
            presence.closed(self.ctx.chat_uuid)

    def _run(self, cursor: str | None) -> None:
        lost = self.subscribe(cursor)
        self.send({"type": "welcome", "message": "Connected to chat", "chat_id": self.ctx.chat_uuid,
                   "user_id": self.ctx.user_uuid, "username": self.ctx.username,
                   "timestamp": events.iso_now(), "last_event_id": self.suppress_until})
        if lost is not None:
            self.send({"type": "error", **lost})
        threading.Thread(target=self._read_client, name="ws-reader", daemon=True).start()
        last_seen = time.monotonic()
        next_token_check = last_seen + self.ctx.token_check_s
        try:
            while True:
                now = time.monotonic()
                idle_left = self.ctx.idle_timeout_s - (now - last_seen)
                if idle_left <= 0:
                    self.ws.close(IDLE_CLOSE_CODE, "Idle timeout")
                    return
                if now >= next_token_check:
                    if (reason := self.ctx.session_ended()) is not None:  # logged out, or deactivated
                        self.ws.close(SESSION_ENDED_CLOSE_CODE, reason)
                        return
                    next_token_check = now + self.ctx.token_check_s
                try:
                    kind, item = self.inbox.get(timeout=min(idle_left, next_token_check - now))
                except queue.Empty:
                    continue
                if kind == "events":
                    sub, entries = item
                    if sub is not self.sub:
                        continue  # what a replaced subscription had queued
                    if not self.relay(entries):
                        return
                elif kind == "client":
                    self.waiting.release()
                    last_seen = time.monotonic()
                    self.tell_dropped()
                    if not self.handle_client(*item):
                        return
                elif kind == "flooded":
                    self.close_too_many_frames()
                    return
                elif kind == GOING_AWAY:  # this process is shutting down: reconnect elsewhere
                    self.ws.close(GOING_AWAY_CODE, "Server going away")
                    return
                else:
                    return
        finally:
            if self.sub is not None:
                self.sub.close()

    def subscribe(self, cursor: str | None) -> dict[str, str] | None:
        """Start reading from `cursor` (exclusive) or, without one, from now plus live replies;
        the `events_lost` error to send before the replay when the stream no longer holds the cursor.

        Reading starts a window earlier so replies already under way can be rebuilt
        (`full_content`); what falls at or before the cursor is only accumulated, not sent.
        A cursor past the stream's last event reads as that event: kept as it is, it would
        hold back every event until the stream's ids caught up with it.
        """
        if self.sub is not None:
            self.sub.close()
        newest = events.last_event_id(self.redis, self.ctx.chat_id)
        self.backlog_end = events.parse_id(newest)  # events up to it are replayed: see `relay`
        if cursor is None:
            self.suppress_until = newest
            self.replay = self.ctx.live_reply_ids()
        else:
            self.suppress_until, self.replay = min(cursor, newest, key=events.parse_id), set()
        read_from = events.id_before_ms(self.suppress_until, self.ctx.replay_window_ms)
        if cursor is None and not self.replay:
            read_from = self.suppress_until
        self.content = {}
        self.sub = self.hub.subscribe(events.chat_stream_key(self.ctx.chat_id), read_from, self.inbox)
        return None if cursor is None else events_lost(self.redis, self.ctx.chat_id, cursor)

    def relay(self, entries: list[Entry]) -> bool:
        """Send the events this client is shown; False once the socket is closed (the chat is gone,
        or its user no longer takes part in it).

        Replayed chunks of a reply (those the stream held when the socket subscribed) that follow
        each other go as one chunk event, as the worker's coalescing would have sent them: each
        carries the reply's `full_content` so far, and one per token made a replay's bytes grow
        with the square of the reply's length."""
        limit = events.parse_id(self.suppress_until)
        frames: list[dict[str, Any]] = []
        for event_id, event in entries:
            if event.get("type") in (events.CHAT_DELETED, events.CHAT_ARCHIVED):
                if self.chat_gone(event["type"]):  # as a socket opened now would be
                    self.send_all(frames)
                    self.ws.close(GONE_CLOSE_CODE, "Chat not found")
                    return False
                continue
            if events.removes(event, self.ctx.user_uuid) and (refused := self.ctx.refusal()) is not None:  # as a socket opened now
                self.send_all(frames)
                self.ws.close(*refused)
                return False
            if (event := events.addressed_to(event, self.ctx.user_uuid)) is None:
                continue
            message_id = event_message_id(event)
            event = self.accumulate(event, message_id)
            position = events.parse_id(event_id)
            if position <= limit and message_id not in self.replay:
                continue
            if self.ctx.translate is not None and (event := self.ctx.translate(event)) is None:
                continue
            frame = {**event, "event_id": event_id}
            if position <= self.backlog_end and frames and same_reply_chunks(frames[-1], frame):
                frames[-1].update(frame, chunk=frames[-1]["chunk"] + frame["chunk"])
            else:
                frames.append(frame)
        self.send_all(frames)
        return True

    def send_all(self, frames: list[dict[str, Any]]) -> None:
        now = events.iso_now()  # entries that arrive together are sent together
        for frame in frames:
            self.send(frame, now)

    def chat_gone(self, kind: str) -> bool:
        """Whether the chat is gone for this surface: deleted, or archived where archived chats are hidden."""
        return kind == events.CHAT_DELETED or (self.ctx.chat_hidden is not None and self.ctx.chat_hidden())

    def accumulate(self, event: dict[str, Any], message_id: str | None) -> dict[str, Any]:
        kind = event.get("type")
        if kind == events.REPLY_START:
            self.content[message_id] = ""
        elif kind == events.REPLY_CHUNK:
            full = self.content.get(message_id, "") + event["chunk"]
            self.content[message_id] = full
            event = {k: v for k, v in event.items() if k not in WORKER_ONLY}
            event["full_content"] = full
        elif kind in events.REPLY_END_TYPES:
            self.content.pop(message_id, None)
        return event

    def handle_client(self, raw: str | bytes, at: float) -> bool:
        """Answer a client frame that came `at` within the socket's frame budget; False once it
        closed the socket for going past it."""
        try:
            message = storable(json.loads(raw))  # text that reaches a query must hold no NUL
            kind = message["type"]
        except (ValueError, TypeError, KeyError, RecursionError):  # json gives up deep nesting with RecursionError
            kind = None
        problem = cursor_problem(message) if kind == "resume" else None
        spent = self.budget.spend(RESUME_COST if kind == "resume" and problem is None else 1, at)  # a re-read costs more
        if spent == ABUSE:
            self.close_too_many_frames()
            return False
        if spent == REFUSED:
            self.send({"type": "error", **self.budget.refusal()})
        if spent != ALLOWED:
            return True
        if not isinstance(kind, str):
            self.send({"type": "error", "error": "Messages must be JSON objects with a type (and no NUL characters)",
                       "error_code": "invalid_message"})
            return True
        if problem is not None:
            self.send({"type": "error", "error": problem, "error_code": "invalid_cursor"})
            return True
        self.answer(kind, message)
        return True

    def close_too_many_frames(self) -> None:
        self.ws.close(TOO_MANY_FRAMES_CODE, "Too many frames")

    def tell_dropped(self) -> None:
        """One `frames_dropped` error for the frames the reader dropped since the last one."""
        dropped = self.dropped
        if dropped > self.dropped_told:
            self.send({"type": "error", **self.budget.dropped_notice(dropped - self.dropped_told)})
            self.dropped_told = dropped

    def answer(self, kind: str, message: dict[str, Any]) -> None:
        """Serve a client frame of type `kind` (a `resume` whose cursor `handle_client` checked)."""
        if kind in PING_TYPES:
            stamp = message.get("timestamp")  # echoed as the document shows: a string, else the server's time
            self.send({"type": "pong", "timestamp": stamp if isinstance(stamp, str) and stamp else events.iso_now()})
        elif kind == "resume":
            if (lost := self.subscribe(str(message["last_event_id"]))) is not None:
                self.send({"type": "error", **lost})
        elif kind in self.ctx.actions:
            answer = self.ctx.actions[kind](message)
            if answer is not None:
                self.send(answer)
        else:
            self.send({"type": "error", "error": f"Unknown message type: {kind}", "error_code": "unknown_type"})

    def _read_client(self) -> None:
        """Client frames into the inbox, stamped with when they came. A client sending three budgets'
        worth within a second is flooding: the loop closes the socket (4429) at its next turn. One
        within the rate whose frames wait for a loop busy sending (a long replay to a slow client)
        has those past `most_waiting` dropped, and is told so. Dropped frames are still read: the
        connection would otherwise buffer them."""
        arrivals = FrameBudget(self.budget.per_s)  # every frame as it comes, kept or not
        flooding = False
        try:
            while True:
                frame = self.ws.receive()
                at = time.monotonic()
                if flooding:
                    continue
                if arrivals.spend(1, at) == ABUSE:
                    flooding = True
                    self.inbox.put(("flooded", None))
                elif self.waiting.acquire(blocking=False):
                    self.inbox.put(("client", (frame, at)))
                else:
                    self.dropped += 1
        except ConnectionClosed:
            pass
        finally:
            self.inbox.put(("closed", None))


def same_reply_chunks(earlier: dict[str, Any], later: dict[str, Any]) -> bool:
    return (earlier.get("type") == later.get("type") == events.REPLY_CHUNK
            and earlier.get("message_id") == later.get("message_id"))


def cursor_problem(message: dict[str, Any]) -> str | None:
    """Why a `resume` frame's `last_event_id` cannot be resumed from; None when it can."""
    cursor = message.get("last_event_id")
    if cursor in (None, ""):
        return "resume needs a last_event_id (0 replays everything the stream holds)"
    if not events.is_valid_id(str(cursor)):
        return "last_event_id is not an event id"
    return None
