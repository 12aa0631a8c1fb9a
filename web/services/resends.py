"""001 requests that resend a session's conversation, or the window of it a client keeps, as
OpenAI-style clients do every turn: which of their messages are new to the session."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from models import Chat, Message
from web.errors import field_error

REPEATS = "the messages add no new user message after the session's conversation, which they repeat"
NOTHING_NEW = f"{REPEATS}: send the new question after it"
STILL_STREAMING = f"{REPEATS}, and its last reply is still streaming: resume it with Last-Event-ID"
UNFINISHED = ("FAILED", "PROCESSING")  # replies a client may leave out of a resend


@dataclass(frozen=True)
class NewMessages:
    """What a request adds to its session: `messages` to store, the last one answered; or none and
    `answer_again`, the id of the stored message a new reply answers (a resend after a failed reply)."""
    messages: list[Any] = field(default_factory=list)
    answer_again: int | None = None


def new_messages(db: Session, chat: Chat, requester_id: int, sent: Sequence[Any]) -> NewMessages:
    """The messages of `sent` (role, content; the last one the user's) the session does not hold yet.

    `sent` resends the conversation when, after an optional leading system message equal to the
    session's first one, it starts with a run of messages that repeats the END of the stored
    conversation (`run_rows`) and either holds an assistant message or is the whole conversation:
    then only what follows the longest such run is new. Otherwise all of `sent` is (a client
    sending only its new messages: a question alone is never taken for a resend of an older one).
    Only the conversation's last 2 × len(sent) + 2 messages are read: room for a left-out reply
    after each message the run repeats.

    Nothing after the run: when replies that failed (or have no text) follow its last message,
    that message is answered again (`answer_again`); one still streaming, or none, is 422.
    """
    limit = 2 * len(sent) + 2
    tail = db.execute(select(Message.id, Message.role, Message.content, Message.status, Message.sender_id)
                      .where(Message.chat_id == chat.id, Message.hidden.is_(False))
                      .order_by(Message.id.desc()).limit(limit)).all()[::-1]
    stored = [(row, words(row.content)) for row in tail]
    copies = [(message.role, words(message.content)) for message in sent]
    starts = (0, 1) if leads_with_system_message(db, chat, copies[0]) else (0,)
    for end in range(len(sent), 0, -1):
        for start in (start for start in starts if start < end):
            run = copies[start:end]
            rows = run_rows(stored, run, requester_id)
            if rows is None:
                continue
            first, last = rows
            whole = len(tail) < limit and all(may_leave_out(row) for row, _ in stored[:first])
            if whole or any(role == "assistant" for role, _ in run):
                return after_run(list(sent[end:]), tail[last], tail[last + 1:])
    return NewMessages(list(sent))


def leads_with_system_message(db: Session, chat: Chat, copy: tuple[str, str]) -> bool:
    """Is `copy` (role, words) the session's first system message, which a window keeps?"""
    if copy[0] != "system":
        return False
    first = db.scalar(select(Message.content).where(Message.chat_id == chat.id, Message.hidden.is_(False),
                                                    Message.role == "system").order_by(Message.id).limit(1))
    return first is not None and words(first) == copy[1]


def run_rows(stored: list[tuple[Row, str]], run: list[tuple[str, str]], requester_id: int) -> tuple[int, int] | None:
    """Where `run` repeats the end of `stored` (rows and their words), leaving out only rows that
    `may_leave_out`: the indexes of the first and last rows it repeats; None when it does not."""
    position, last = len(stored), None
    for copy in reversed(run):
        position -= 1
        while position >= 0 and not resent(*stored[position], copy, requester_id):
            if not may_leave_out(stored[position][0]):
                return None
            position -= 1
        if position < 0:
            return None
        last = position if last is None else last
    return position, last


def after_run(new: list[Any], last: Row, left_out: list[Row]) -> NewMessages:
    """The request's messages after the run, which ends with the stored `last` followed by the
    `left_out` rows; none: `last` answered again after a failed reply, else 422."""
    if new:
        return NewMessages(new)
    if any(row.status == "PROCESSING" for row in left_out):
        raise field_error(["body", "messages"], STILL_STREAMING)
    if left_out:
        return NewMessages(answer_again=last.id)
    raise field_error(["body", "messages"], NOTHING_NEW)


def resent(row: Row, row_words: str, copy: tuple[str, str], requester_id: int) -> bool:
    """Is `copy` (role, words) the requester's copy of the stored `row` (its text's `row_words`):
    the same role and text but for whitespace, and for a user message, one the requester sent?

    A client reading the stream as the document's example does (each `data:` line stripped) has the
    replies without their spaces and line breaks. A reply still streaming has no text stored yet:
    the client's copy of it is what it has received so far. Another member's question is not the
    requester's, even in the same words."""
    role, text = copy
    if row.role != role or (role == "user" and row.sender_id != requester_id):
        return False
    return (role == "assistant" and row.status == "PROCESSING") or row_words == text


def words(text: str) -> str:
    return "".join(text.split())


def may_leave_out(row: Row) -> bool:
    """A reply that failed (no context, and a client may have dropped it) or is still streaming, or
    a message without text (a reply stopped before its first token): no client can send one."""
    return not row.content or (row.role == "assistant" and row.status in UNFINISHED)
