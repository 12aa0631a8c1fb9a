"""Telling a resuming client that events after its cursor may have left the capped stream.

A chat's stream keeps its newest `REPLY_STREAM_MAXLEN` events: a client that resumes from an
event older than the oldest one kept gets what follows the gap, and this error first, so it
knows to reload the history over REST. Ask after subscribing: the replay was read by then, so
a trim racing the resume is reported rather than missed.
"""
from __future__ import annotations

import time

from redis import Redis

from workers import events

EVENTS_LOST = "events_lost"


def events_lost(redis: Redis, chat_id: int, cursor: str) -> dict[str, str] | None:
    """`{"error", "error_code": "events_lost"}` when the stream holds nothing as old as `cursor`, else None.

    A cursor of 0 asks for whatever the stream holds, not for what followed an event seen. A stream
    that holds nothing (it expired an hour after its last event, or Redis lost it) has lost whatever
    followed a cursor's event, if anything did; unless that event is from the future (a made-up
    cursor), which reads as the last event, as it does on a stream that holds some.
    """
    if events.parse_id(cursor) == (0, 0):
        return None
    oldest = events.oldest_event_id(redis, chat_id)
    if oldest is None and events.parse_id(cursor)[0] > time.time() * 1000:
        return None
    if oldest is not None and events.parse_id(cursor) >= events.parse_id(oldest):
        return None
    kept = "the chat's event stream has expired" if oldest is None else f"the oldest kept is {oldest}"
    return {"error": f"Events after {cursor} are no longer kept ({kept}): some may be lost; reload the history",
            "error_code": EVENTS_LOST}
