"""Chat analytics, computed by the database (COUNT/AVG ... GROUP BY) on SQLite and PostgreSQL.

An AI reply belongs to the agent it was asked of (`metadata.agent_id`, set by the
conversations API, or the chat's agent when the reply was asked, null when the chat's owner could
not use it) or else, for replies stored without the key, to its chat's agent. Days are UTC
calendar days.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Boolean, String, case, func, select, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from models import Agent, Chat, Message, Participant, User
from models.message import FINAL_REPLY_STATUSES
from web.services import users
from web.services.agents import visible_to

DAYS = 30
TOP_AGENTS = 10


class utc_day(FunctionElement):
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD'."""

    type = String()
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element, compiler, **kw) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"  # SQLite stores UTC text


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


class has_key(FunctionElement):
    """Whether a JSON object has `key`, whatever its value (JSON null included)."""

    type = Boolean()
    inherit_cache = True


@compiles(has_key, "sqlite")
def _has_key_sqlite(element, compiler, **kw) -> str:
    document, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"(json_type({document}, '$.' || {key}) IS NOT NULL)"  # json_type of a JSON null is 'null'


@compiles(has_key, "postgresql")
def _has_key_postgresql(element, compiler, **kw) -> str:
    document, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"((({document}) -> {key}) IS NOT NULL)"  # -> gives the JSON null 'null', SQL NULL when absent


@dataclass
class AgentCount:
    agent_id: int
    name: str
    count: int


@dataclass
class DayStats:
    day: date
    conversations: int
    messages: int


@dataclass
class Dashboard:
    total_conversations: int
    total_messages: int
    average_response_s: float
    most_active_agent: AgentCount | None
    daily: list[DayStats]


@dataclass
class AgentPerformance:
    agent_id: int
    name: str
    total_conversations: int
    success_rate: float


@dataclass
class GlobalStats:
    total_conversations: int
    total_messages: int
    average_conversations_per_user: float
    top_agents: list[AgentPerformance]


def replies_by_agent():
    """Every AI reply with the agent it belongs to (NULL when none), as a subquery.

    A reply is generated, so it has no sender; an assistant message with one was typed by that
    user (002's `sender_type: "agent"`, or history sent to 001) and is nobody's reply. A reply
    naming `agent_id` null was answered by no agent (the chat's owner could not use it)."""
    named = has_key(Message.meta, "agent_id")
    agent_id = case((named, Message.meta["agent_id"].as_integer()), else_=Chat.agent_id)
    return (
        select(Message.id, Message.chat_id, Message.status, Message.hidden, Chat.status.label("chat_status"),
               agent_id.label("agent_id"))
        .join(Chat, Chat.id == Message.chat_id)
        .where(Message.role == "assistant", Message.sender_id.is_(None))
        .subquery()
    )


def user_chat_ids(user: User):
    """The ids of the chats `user` takes part in that are not deleted."""
    return (select(Chat.id).join(Participant, Participant.chat_id == Chat.id)
            .where(Participant.user_id == user.id, Chat.status != "DELETED"))


def dashboard(db: Session, user: User, today: date) -> Dashboard:
    """The user's totals, mean reply time, busiest agent and the last 30 days, `today` included."""
    chats = user_chat_ids(user)
    shown = (Message.chat_id.in_(chats), Message.hidden.is_(False))
    conversations = db.scalar(select(func.count()).select_from(chats.subquery())) or 0
    messages = db.scalar(select(func.count(Message.id)).where(*shown)) or 0
    mean_ms = db.scalar(select(func.avg(Message.processing_time_ms))
                        .where(*shown, Message.role == "assistant", Message.status == "DELIVERED"))
    return Dashboard(conversations, messages, round(float(mean_ms or 0) / 1000, 3),
                     most_active_agent(db, user, chats), daily_stats(db, chats, today))


def most_active_agent(db: Session, user: User, chats) -> AgentCount | None:
    """The agent with the most replies in `chats`, among those `user` may see: another user's
    private agent answering in a chat they share is not named (it is 404 for them)."""
    replies = replies_by_agent()
    row = db.execute(
        select(Agent.id, Agent.name, func.count(replies.c.id).label("n"))
        .join(replies, replies.c.agent_id == Agent.id)
        .where(replies.c.chat_id.in_(chats), replies.c.hidden.is_(False), visible_to(user))
        .group_by(Agent.id, Agent.name)
        .order_by(func.count(replies.c.id).desc(), Agent.id)
        .limit(1)
    ).first()
    return AgentCount(*row) if row else None


def daily_stats(db: Session, chats, today: date) -> list[DayStats]:
    """Conversations started and messages sent per UTC day; days without any are zeros."""
    first = today - timedelta(days=DAYS - 1)
    since = datetime.combine(first, time.min, tzinfo=timezone.utc)
    started = per_day(db, Chat.created_at, Chat.id.in_(chats), Chat.created_at >= since)
    sent = per_day(db, Message.created_at, Message.chat_id.in_(chats), Message.hidden.is_(False),
                   Message.created_at >= since)
    days = [first + timedelta(days=n) for n in range(DAYS)]
    return [DayStats(d, started.get(d.isoformat(), 0), sent.get(d.isoformat(), 0)) for d in days]


def per_day(db: Session, stamp: ColumnElement, *conditions: ColumnElement) -> dict[str, int]:
    day = utc_day(stamp).label("day")
    rows = select(day).where(*conditions).subquery()
    return {d: n for d, n in db.execute(select(rows.c.day, func.count()).group_by(rows.c.day))}


def global_stats(db: Session, user: User) -> GlobalStats:
    """Totals over every user, mean chats per user and the agents used in the most chats (admins only)."""
    users.require_admin(user)
    live = Chat.status != "DELETED"
    conversations = db.scalar(select(func.count(Chat.id)).where(live)) or 0
    messages = db.scalar(select(func.count(Message.id)).join(Chat, Chat.id == Message.chat_id)
                         .where(live, Message.hidden.is_(False))) or 0
    accounts = db.scalar(select(func.count(User.id))) or 0
    per_user = round(conversations / accounts, 2) if accounts else 0.0
    return GlobalStats(conversations, messages, per_user, top_agents(db))


def top_agents(db: Session) -> list[AgentPerformance]:
    """Agents by how many live chats they serve (assigned or replied in), with the share of their
    finished replies that were delivered, in percent; replies in deleted chats and hidden ones count
    nowhere, as in the message totals."""
    replies = replies_by_agent()
    counted = (replies.c.chat_status != "DELETED", replies.c.hidden.is_(False))  # as the totals count messages
    assigned = select(Chat.id.label("chat_id"), Chat.agent_id.label("agent_id")).where(
        Chat.agent_id.is_not(None), Chat.status != "DELETED")
    replied = select(replies.c.chat_id, replies.c.agent_id).where(replies.c.agent_id.is_not(None), *counted)
    pairs = union(assigned, replied).subquery()  # UNION drops duplicates: one row per (chat, agent)
    served = select(pairs.c.agent_id, func.count().label("chats")).group_by(pairs.c.agent_id).subquery()
    outcomes = (
        select(replies.c.agent_id, func.count().label("finished"),
               func.sum(case((replies.c.status == "DELIVERED", 1), else_=0)).label("delivered"))
        .where(replies.c.status.in_(FINAL_REPLY_STATUSES), *counted)
        .group_by(replies.c.agent_id)
        .subquery()
    )
    rows = db.execute(
        select(Agent.id, Agent.name, served.c.chats, outcomes.c.finished, outcomes.c.delivered)
        .join(served, served.c.agent_id == Agent.id)
        .outerjoin(outcomes, outcomes.c.agent_id == Agent.id)
        .order_by(served.c.chats.desc(), Agent.id)
        .limit(TOP_AGENTS)
    )
    return [AgentPerformance(agent_id, name, chats, round(100 * (delivered or 0) / finished, 1) if finished else 0.0)
            for agent_id, name, chats, finished, delivered in rows]
