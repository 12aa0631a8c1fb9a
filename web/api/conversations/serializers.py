"""How the conversations API (002) shows chats, messages, agents and analytics.

Canonical values are translated here: chat status ACTIVE/ARCHIVED/DELETED → "active",
"archived", "deleted" (`is_archived` ⇔ ARCHIVED); message role user/assistant/system →
`sender` "user"/"agent"/"system"; message statuses and content types in lower case;
times in seconds.
"""
from __future__ import annotations

from typing import Any

from models import Agent, Attachment, Chat, Message, SessionSpan
from web.services.analytics import AgentPerformance, Dashboard, GlobalStats
from web.services.conversations import ConversationRow
from workers.events import iso

SENDERS = {"user": "user", "assistant": "agent", "system": "system"}


def seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def conversation_type(chat: Chat) -> str:
    """The type kept in the chat's metadata; "chat" unless it is text (003 clients write that
    metadata as any JSON object, where the key may hold anything)."""
    kind = (chat.meta or {}).get("conversation_type")
    return kind if isinstance(kind, str) else "chat"


def conversation_view(row: ConversationRow) -> dict[str, Any]:
    chat = row.chat
    return {
        "id": chat.id,
        "title": chat.title,
        "user_id": chat.owner_id,
        "agent_id": chat.agent_id,
        "conversation_type": conversation_type(chat),
        "status": chat.status.lower(),
        "is_archived": chat.status == "ARCHIVED",
        "is_pinned": chat.is_pinned,
        "total_messages": chat.message_count,
        "unread_count": row.unread_count,
        "last_message_at": iso(row.last_message_at),
        "created_at": iso(chat.created_at),
        "updated_at": iso(chat.updated_at),
        "uuid": chat.uuid,
    }


def conversation_details(row: ConversationRow, sessions: list[SessionSpan]) -> dict[str, Any]:
    return {**conversation_view(row), "sessions": [session_view(s) for s in sessions]}


def session_view(span: SessionSpan) -> dict[str, Any]:
    return {
        "id": span.id,
        "session_start": iso(span.session_start),
        "session_end": iso(span.session_end),
        "messages_count": span.messages_count,
        "duration_minutes": span.duration_minutes,
    }


def attachment_view(item: Attachment) -> dict[str, Any]:
    return {"id": item.id, "file_name": item.file_name, "file_type": item.file_type, "file_size": item.file_size,
            "file_path": item.file_path, "created_at": iso(item.created_at)}


def message_view(message: Message, attachments: list[Attachment]) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.chat_id,
        "content": message.content,
        "content_type": message.content_type.lower(),
        "sender": SENDERS[message.role],
        "message_type": "system" if message.role == "system" else message.content_type.lower(),
        "status": message.status.lower(),
        "tokens_used": message.tokens_used,
        "processing_time": seconds(message.processing_time_ms),
        "created_at": iso(message.created_at),
        "attachments": [attachment_view(a) for a in attachments],
    }


def added_message_view(message: Message, attachments: list[Attachment]) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "conversation_id": message.chat_id,
        "content": message.content,
        "sender": SENDERS[message.role],
        "created_at": iso(message.created_at),
        "attachments": [attachment_view(a) for a in attachments],
    }


def ai_response_view(reply: Message) -> dict[str, Any]:
    view = {
        "message_id": reply.id,
        "ai_response": reply.content,
        "tokens_used": reply.tokens_used,
        "processing_time": seconds(reply.processing_time_ms),
        "cost": float(reply.cost) if reply.cost is not None else 0,
        "created_at": iso(reply.created_at),
        "model": reply.model,
    }
    if reply.cost is None:
        view["cost_note"] = f"No price is configured for model '{reply.model}'; set MODEL_PRICES to price it"
    return view


def search_result_view(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "conversation_id": message.chat_id,
        "content": message.content,
        "sender": SENDERS[message.role],
        "created_at": iso(message.created_at),
    }


def agent_view(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "model": agent.model,
        "system_prompt": agent.system_prompt,
        "temperature": agent.temperature,
        "is_public": agent.is_public,
        "owner_id": agent.owner_id,
        "created_at": iso(agent.created_at),
        "updated_at": iso(agent.updated_at),
    }


def dashboard_view(stats: Dashboard) -> dict[str, Any]:
    top = stats.most_active_agent
    return {
        "total_conversations": stats.total_conversations,
        "total_messages": stats.total_messages,
        "average_response_time": stats.average_response_s,
        "most_active_agent": {"agent_id": top.agent_id, "name": top.name, "message_count": top.count} if top else None,
        "daily_stats": [{"date": d.day.isoformat(), "conversations": d.conversations, "messages": d.messages}
                        for d in stats.daily],
    }


def top_agent_view(agent: AgentPerformance) -> dict[str, Any]:
    return {"agent_id": agent.agent_id, "name": agent.name, "total_conversations": agent.total_conversations,
            "success_rate": agent.success_rate}


def global_view(stats: GlobalStats) -> dict[str, Any]:
    return {
        "total_conversations_all_users": stats.total_conversations,
        "total_messages_all_users": stats.total_messages,
        "average_conversations_per_user": stats.average_conversations_per_user,
        "top_performing_agents": [top_agent_view(a) for a in stats.top_agents],
    }
