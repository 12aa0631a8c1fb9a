"""Wait, within a request, for a reply to end (for the non-streaming reply endpoints)."""
from __future__ import annotations

import queue
import time
from typing import Callable

from flask import current_app

from workers import events
from workers.events import event_message_id


ENDED_POLL_S = 1.0  # how often a silent wait asks whether the reply ended without an event


class ReplyNotFinished(Exception):
    """The reply did not end within the wait; it goes on and is stored when it does."""


def wait_for_reply_end(chat_id: int, cursor: str, reply_uuid: str, wait_s: float,
                       ended: Callable[[], bool]) -> None:
    """Block until the reply's closing event (after `cursor`) reaches the chat's stream, or until
    `ended` (asked after each second of silence) says it ended without one: deleted with its
    chat, whose stream goes with it.

    Take `cursor` (events.last_event_id) before posting the message, so nothing is missed.
    """
    inbox: queue.Queue = queue.Queue()
    sub = current_app.extensions["relay_hub"].subscribe(events.chat_stream_key(chat_id), cursor, inbox)
    deadline = time.monotonic() + wait_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, (_, entries) = inbox.get(timeout=min(left, ENDED_POLL_S))
            except queue.Empty:
                if ended():
                    return
                continue
            for _, event in entries:
                if event.get("type") in events.REPLY_END_TYPES and event_message_id(event) == reply_uuid:
                    return
    finally:
        sub.close()
    raise ReplyNotFinished(reply_uuid)
