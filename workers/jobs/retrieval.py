"""retrieve: find the chunks a RAG reply needs, store them on the AI message, then generate it.

Runs on the `replies` queue (IO-bound: an embeddings call and a few queries) under the
reply's own job id, then calls `generate_reply` in the same job, which streams the tokens.
Progress goes to the chat's event stream as `rag_status` events carrying the reply's id.

A follow-up ("tell me more", "and the second one?") names nothing to search for: a message of
fewer than `FOLLOW_UP_TERMS` content words is searched as it is and, joined to the session's
earlier questions (the newest ones that bring the words up to `FOLLOW_UP_TERMS`, at most
`EARLIER_QUESTIONS`), once more; the hits of both are merged.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from rq.timeouts import JobTimeoutException
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Message
from workers import events, runtime
from workers.jobs.replies import generate_reply
from workers.retrieval import text
from workers.retrieval.search import SearchOptions, SearchResult, search_all
from workers.retrieval.store import Scope

log = logging.getLogger(__name__)

RAG_STATUS = "rag_status"
CITATION_FIELDS = ("document_id", "filename", "chunk_index", "page_number", "relevance_score")
FOLLOW_UP_TERMS = 4  # a message with fewer content words is read as a follow-up
EARLIER_QUESTIONS = 3  # at most this many earlier questions join a follow-up's search
QUESTION_CHARS = 1000  # of each earlier question
FOLLOW_UP_NOTE = "Searching with your earlier questions too"


def retrieve(message_id: int, primary_only: bool = False) -> str:
    """Search the requesting user's documents for the reply stored as `message_id`; idempotent."""
    rt = runtime.current()
    with rt.sessions() as db:
        reply = db.get(Message, message_id)
        if reply is None or reply.status != "PROCESSING":
            return "skipped"
        meta = reply.meta or {}
        if "retrieved" not in meta:  # a job run again after retrieval goes straight to the reply
            rag = meta.get("rag") or {}
            say = status_publisher(rt, reply.chat_id, reply.uuid)
            say("Searching your documents")
            result = run_search(db, rt, meta.get("requested_by"), rag, queries_for(db, reply, rag.get("query") or ""))
            for note in result.notes:
                say(note)
            found = len(result.hits)
            say(f"Found {found} relevant chunk{'' if found == 1 else 's'}" if found else "No relevant documents found")
            record(reply, rag, result)
            db.commit()
    return generate_reply(message_id, primary_only)


def queries_for(db: Session, reply: Message, query: str) -> list[str]:
    """The message, and for a follow-up also the message after the earlier questions it needs."""
    if len(text.terms(query)) >= FOLLOW_UP_TERMS:
        return [query]
    asked = (reply.meta or {}).get("prompt_message_id", reply.id)
    earlier = db.scalars(select(Message.content).where(Message.chat_id == reply.chat_id, Message.role == "user",
                                                       Message.hidden.is_(False), Message.id < asked)
                         .order_by(Message.id.desc()).limit(EARLIER_QUESTIONS))
    joined = query
    for question in earlier:
        joined = f"{question[:QUESTION_CHARS]}\n{joined}"
        if len(text.terms(joined)) >= FOLLOW_UP_TERMS:
            break
    return [query] if joined == query else [query, joined]


def run_search(db: Session, rt: runtime.Runtime, owner_id: int | None, rag: dict[str, Any],
               queries: list[str]) -> SearchResult:
    """The search, or an empty result that says why when it fails (the reply still goes ahead)."""
    if owner_id is None:
        return SearchResult([], "none", ["No documents to search"])
    try:
        result = search_all(db, rt.settings, Scope(owner_id, rag.get("dataset_id")), queries,
                            SearchOptions.from_dict(rag.get("search_options")))
        if len(queries) > 1:
            result.notes.insert(0, FOLLOW_UP_NOTE)
        return result
    except JobTimeoutException:
        raise
    except Exception:
        log.exception("document search failed")
        db.rollback()
        return SearchResult([], "none", ["Document search failed: answering without documents"])


def record(reply: Message, rag: dict[str, Any], result: SearchResult) -> None:
    """The chosen chunks (for the prompt) and their citations go on the AI message."""
    hits = result.hits
    reply.sources = [{key: hit[key] for key in CITATION_FIELDS} for hit in hits]
    reply.meta = {
        **(reply.meta or {}),
        "retrieved": hits,
        "context_ids": [hit["chunk_id"] for hit in hits],
        "relevance_score": max((hit["relevance_score"] for hit in hits), default=None),
        "search": {"type": (rag.get("search_options") or {}).get("search_type", "SIMILARITY"), "mode": result.mode,
                   "notes": result.notes},
    }


def status_publisher(rt: runtime.Runtime, chat_id: int, reply_uuid: str) -> Callable[[str], None]:
    """A function that appends one status line of this reply to the chat's stream."""
    settings = rt.settings

    def say(text: str) -> None:
        events.publish(rt.redis, chat_id, {"type": RAG_STATUS, "message_id": reply_uuid, "status": text},
                       maxlen=settings.reply_stream_maxlen, ttl_s=settings.reply_stream_ttl_s)

    return say
