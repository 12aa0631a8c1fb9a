"""Agents: list, create, get, update and delete (/chat/agents; 002 names them by `agent_id`)."""
from __future__ import annotations

from flask import g

from web.api.conversations import bp
from web.api.conversations.answers import Agent, AgentPage, AgentRef, Envelope
from web.api.conversations.envelope import found, ok
from web.api.conversations.schemas import AgentRequest, AgentUpdate, Page
from web.api.conversations.serializers import agent_view
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.auth.tokens import login_required
from web.db import get_db
from web.redis_client import get_redis
from web.services import agents, models


@bp.get("/agents")
@responds(200, Envelope[AgentPage])
@login_required
def list_agents():
    """List the agents the user can use (their own and public ones; every agent for an admin), by name."""
    query = parse_query(Page)
    rows, total = agents.list_agents(get_db(), g.user, query.limit, query.offset)
    return ok(found(total, "agent"), {"agents": [agent_view(a) for a in rows], "total": total,
                                      "limit": query.limit, "offset": query.offset})


@bp.post("/agents")
@responds(201, Envelope[AgentRef], "Created")
@login_required
def create_agent():
    """Create an agent: a name, a model, a system prompt and a temperature (only admins make one public)."""
    body = parse_body(AgentRequest)
    if body.model is not None:
        models.check_model(get_redis(), body.model, ["body", "model"])
    agent = agents.create_agent(get_db(), g.user, body.model_dump())
    return ok("Agent created successfully", {"agent_id": agent.id}, 201)


@bp.get("/agents/<int:agent_id>")
@responds(200, Envelope[Agent])
@login_required
def get_agent(agent_id: int):
    """An agent the user can use."""
    return ok("Agent found", agent_view(agents.usable_agent(get_db(), g.user, agent_id)))


@bp.put("/agents/<int:agent_id>")
@responds(200, Envelope[AgentRef])
@login_required
def update_agent(agent_id: int):
    """Change the given fields of an agent (its owner or an admin; only admins make one public)."""
    body = parse_body(AgentUpdate)
    if body.model is not None:
        models.check_model(get_redis(), body.model, ["body", "model"])
    agents.update_agent(get_db(), g.user, agent_id, body.model_dump(exclude_unset=True))
    return ok("Agent updated successfully", {"agent_id": agent_id})


@bp.delete("/agents/<int:agent_id>")
@responds(200, Envelope[AgentRef])
@login_required
def delete_agent(agent_id: int):
    """Delete an agent (its owner or an admin); its conversations go on without an agent."""
    agents.delete_agent(get_db(), g.user, agent_id)
    return ok("Agent deleted successfully", {"agent_id": agent_id})
