"""001 requests that resend a session's whole conversation, as OpenAI-style clients do every
turn: which of their messages are new to the session."""
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


def new_messages(db: Session, chat: Chat, sent: Sequence[Any]) -> NewMessages:
    """The messages of `sent` (role, content; the last one the user's) the session does not hold yet.

    When `sent` starts with the session's whole conversation as its history shows it (role and
    content, whitespace aside, oldest first), only what follows is new; otherwise all of it is (a client sending
    only its new messages). A reply that failed or is still streaming, and a message without text
    (which no client can send), may be left out (`may_leave_out`). The stored messages are read in
    order and no further than `sent` can match them.

    Nothing after the conversation: when replies that failed (or have no text) follow its last
    message, that message is answered again (`answer_again`); one still streaming, or none, is 422.
    """
    matched, last_matched, left_out = 0, None, []
    query = (select(Message.id, Message.role, Message.content, Message.status)
             .where(Message.chat_id == chat.id, Message.hidden.is_(False)).order_by(Message.id)
             .execution_options(yield_per=len(sent) + 1))
    with db.execute(query) as rows:
        for row in rows:
            if matched < len(sent) and resent(row, sent[matched]):
                matched, last_matched, left_out = matched + 1, row.id, []
            elif may_leave_out(row):
                left_out.append(row.status)
            else:  # not the whole conversation
                return NewMessages(list(sent))
    if matched < len(sent):
        return NewMessages(list(sent[matched:]))
    if "PROCESSING" in left_out:
        raise field_error(["body", "messages"], STILL_STREAMING)
    if left_out:
        return NewMessages(answer_again=last_matched)
    raise field_error(["body", "messages"], NOTHING_NEW)


def resent(row: Row, message: Any) -> bool:
    """Is `message` the client's copy of the stored `row`: the same role and text but for whitespace?

    A client reading the stream as the document's example does (each `data:` line stripped) has the
    replies without their spaces and line breaks. A reply still streaming has no text stored yet:
    the client's copy of it is what it has received so far."""
    if row.role != message.role:
        return False
    return (row.role == "assistant" and row.status == "PROCESSING") or words(row.content) == words(message.content)


def words(text: str) -> str:
    return "".join(text.split())


def may_leave_out(row: Row) -> bool:
    """A reply that failed (no context, and a client may have dropped it) or is still streaming, or
    a message without text (a reply stopped before its first token): no client can send one."""
    return not row.content or (row.role == "assistant" and row.status in UNFINISHED)
