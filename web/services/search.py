"""Full-text search over the messages a user may see, best matches first.

PostgreSQL: `websearch_to_tsquery('english', query)` against the GIN-indexed
`to_tsvector('english', content)` (migration 0005), ranked by `ts_rank`. SQLite: the FTS5
table `messages_fts` (porter stemming), ranked by `bm25`. Both read the same query syntax,
and no query is a syntax error: words (all must match, in any of their forms: "orders"
finds "order"), "quoted phrases", `OR` between alternatives and `-word` to exclude; every
other character only separates words.

Both parsers take a run of Chinese, Japanese or Korean characters as one word, so a query
holding such characters is matched by substrings instead: every word of it must appear in
the message (case-insensitive), with the same syntax, newest first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, and_, column, func, literal_column, not_, or_, select, table, text
from sqlalchemy.orm import Session

from models import Chat, Message, Participant, User
from workers.retrieval.text import UNSPACED

VISIBLE = ("ACTIVE", "ARCHIVED")
ENGLISH = literal_column("'english'::regconfig")  # a constant, so the expression index matches
FTS = table("messages_fts", column("rowid"))
CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')  # -?"a phrase" (closing quote optional) or a bare chunk
WORD = re.compile(r"\w+")


@dataclass
class Alternative:
    """Terms that must all match, and terms that must not."""

    wanted: list[str] = field(default_factory=list)
    unwanted: list[str] = field(default_factory=list)


def parse(query: str) -> list[Alternative]:
    """The query's alternatives (split by OR); each term is a word or a phrase of \\w words."""
    alternatives = [Alternative()]
    for match in CHUNK.finditer(query):
        negate, phrase, chunk = match.group(1) == "-", match.group(2), match.group(3)
        if chunk is not None and chunk.upper() == "OR":
            alternatives.append(Alternative())
            continue
        if chunk is not None and chunk.startswith("-"):
            negate, chunk = True, chunk[1:]
        words = WORD.findall(phrase if phrase is not None else chunk)
        if not words:
            continue
        terms = [" ".join(words)] if phrase is not None else words
        (alternatives[-1].unwanted if negate else alternatives[-1].wanted).extend(terms)
    return [alt for alt in alternatives if alt.wanted]  # a lone exclusion matches nothing


def fts5_query(query: str) -> str:
    """The FTS5 expression for a web-search style query; '' when it has no words.

    Each term is an FTS5 string of \\w characters only, so nothing the user types is read as
    FTS5 syntax.
    """
    parts = []
    for alt in parse(query):
        expr = " AND ".join(f'"{term}"' for term in alt.wanted)
        for term in alt.unwanted:
            expr = f'({expr}) NOT "{term}"'
        parts.append(f"({expr})")
    return " OR ".join(parts)


def substring_condition(query: str) -> ColumnElement[bool] | None:
    """The query read by substrings (case-insensitive, LIKE wildcards taken as text); None when
    it has no words."""
    alternatives = [and_(*(Message.content.icontains(t, autoescape=True) for t in alt.wanted),
                         *(not_(Message.content.icontains(t, autoescape=True)) for t in alt.unwanted))
                    for alt in parse(query)]
    return or_(*alternatives) if alternatives else None


def visible_messages(user: User) -> Select:
    """The messages `user` may see: shown messages of live chats they take part in."""
    return (
        select(Message)
        .join(Participant, Participant.chat_id == Message.chat_id)
        .join(Chat, Chat.id == Message.chat_id)
        .where(Participant.user_id == user.id, Chat.status.in_(VISIBLE), Message.hidden.is_(False),
               Message.status != "PROCESSING")
    )


def search_messages(db: Session, user: User, query: str, limit: int, offset: int) -> tuple[list[Message], int]:
    """The page of matching messages, best first (then newest), and how many match in all."""
    if UNSPACED.search(query):
        condition = substring_condition(query)
        if condition is None:
            return [], 0
        matches = visible_messages(user).where(condition)
        best_first = (Message.id.desc(),)
    elif db.get_bind().dialect.name == "postgresql":
        wanted = func.websearch_to_tsquery(ENGLISH, query)
        vector = func.to_tsvector(ENGLISH, Message.content)
        matches = visible_messages(user).where(vector.op("@@")(wanted))
        best_first = (func.ts_rank(vector, wanted).desc(), Message.id.desc())
    else:
        expression = fts5_query(query)
        if not expression:
            return [], 0
        matches = (visible_messages(user).join(FTS, FTS.c.rowid == Message.id)
                   .where(text("messages_fts MATCH :fts_query").bindparams(fts_query=expression)))
        best_first = (func.bm25(literal_column("messages_fts")), Message.id.desc())
    total = db.scalar(select(func.count()).select_from(matches.subquery())) or 0
    page = db.scalars(matches.order_by(*best_first).limit(limit).offset(offset)) if total else []
    return list(page), total
