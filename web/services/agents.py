"""AI agents: who may see, use and change them.

A user's agents are their own; an admin may make an agent public, and then every user may
use it. Only the owner (or an admin, who sees every agent) changes or deletes an agent;
deleting one leaves its chats without an agent (their replies fall back to the chat's own
model and prompt). A chat's agent answers whoever asks there while the chat's owner may
use it; once it is another user's private agent (a public one made private again), the chat's
replies fall back the same way.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Agent, User
from models.base import utcnow
from web.errors import Forbidden, NotFound
from web.services import rows


def visible_to(user: User):
    """The condition: agents `user` may see and use (an admin sees every agent)."""
    return true() if user.is_admin else or_(Agent.owner_id == user.id, Agent.is_public.is_(True))


def list_agents(db: Session, user: User, limit: int, offset: int) -> tuple[list[Agent], int]:
    """The user's agents and the public ones, by name (`alpha` before `Bravo`, not after it as in
    the byte order of SQLite and C-collated PostgreSQL); and how many there are in all."""
    rows = db.scalars(select(Agent).where(visible_to(user)).order_by(func.lower(Agent.name), Agent.name, Agent.id)
                      .limit(limit).offset(offset))
    total = db.scalar(select(func.count()).select_from(Agent).where(visible_to(user))) or 0
    return list(rows), total


def may_use(db: Session, user: User, agent_id: int) -> bool:
    """Whether `user` may see and use the agent (false for unknown agents)."""
    return db.scalar(select(Agent.id).where(Agent.id == agent_id, visible_to(user))) is not None


def usable_agent(db: Session, user: User, agent_id: int) -> Agent:
    """An agent `user` may see and use; 404 for unknown agents and other users' private ones."""
    agent = db.scalar(select(Agent).where(Agent.id == agent_id, visible_to(user)))
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found")
    return agent


@contextmanager
def agent_kept(db: Session, agent_id: int | None) -> Iterator[None]:
    """Around a write naming `agent_id`: 404 (rolled back) when the agent was deleted since it
    was looked up, as for one deleted before, instead of the write's foreign key error."""
    try:
        yield
    except IntegrityError:
        if agent_id is None:
            raise
        db.rollback()
        raise NotFound(f"Agent {agent_id} not found") from None


def editable_agent(db: Session, user: User, agent_id: int) -> Agent:
    """An agent `user` may change: their own, or any agent for an admin."""
    agent = usable_agent(db, user, agent_id)
    if agent.owner_id != user.id and not user.is_admin:
        raise Forbidden("Only the agent's owner or an admin can change it")
    return agent


def check_public(user: User, fields: dict[str, Any]) -> None:
    if fields.get("is_public") and not user.is_admin:
        raise Forbidden("Only admins can make an agent public")


def create_agent(db: Session, user: User, fields: dict[str, Any]) -> Agent:
    check_public(user, fields)
    now = utcnow()
    agent = Agent(owner_id=user.id, created_at=now, updated_at=now, **fields)
    db.add(agent)
    db.commit()
    return agent


def update_agent(db: Session, user: User, agent_id: int, fields: dict[str, Any]) -> Agent:
    agent = editable_agent(db, user, agent_id)
    check_public(user, fields)
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.updated_at = utcnow()
    rows.commit_change(db, f"Agent {agent_id} not found")
    return agent


def delete_agent(db: Session, user: User, agent_id: int) -> None:
    rows.delete_row(db, editable_agent(db, user, agent_id), f"Agent {agent_id} not found")
