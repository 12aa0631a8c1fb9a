"""Telling a resuming client that events after its cursor may have left the capped stream.

A chat's stream keeps its newest `REPLY_STREAM_MAXLEN` events: a client that resumes from an
event older than the oldest one kept gets what follows the gap, and this error first, so it
knows to reload the history over REST. Ask after subscribing: the replay was read by then, so
a trim racing the resume is reported rather than missed.
"""
from __future__ import annotations

from redis import Redis

from workers import events

EVENTS_LOST = "events_lost"


def events_lost(redis: Redis, chat_id: int, cursor: str) -> dict[str, str] | None:
    """`{"error", "error_code": "events_lost"}` when the stream holds nothing as old as `cursor`, else None.

    A cursor of 0 asks for whatever the stream holds, not for what followed an event seen.
    """
    if events.parse_id(cursor) == (0, 0):
        return None
    oldest = events.oldest_event_id(redis, chat_id)
    if oldest is None or events.parse_id(cursor) >= events.parse_id(oldest):
        return None
    return {"error": f"Events after {cursor} are no longer kept (the oldest kept is {oldest}): some may be lost; "
                     f"reload the history", "error_code": EVENTS_LOST}
