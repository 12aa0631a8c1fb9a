"""What the conversations API (002) answers, for `/openapi.json`: every success is the
`Envelope` `{success: true, message, data}`, with `data` one of the models below, exactly as
serializers.py builds it (lower-case statuses, `sender` user/agent/system, ISO times in UTC,
times taken in seconds)."""
from __future__ import annotations

from datetime import date, datetime  # noqa: F401 (pyflakes misses `date` as DayStats.date's type)
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from web.api.described import UUID_ID, Answer, sometimes
from web.services.analytics import DAYS, TOP_AGENTS

Data = TypeVar("Data", bound=Answer)
Sender = Literal["user", "agent", "system"]
MessageStatus = Literal["sending", "sent", "delivered", "read", "processing", "cancelled", "failed"]
ContentType = Literal["text", "image", "file"]  # what the chats' surface (003) stores; the others store text


class Envelope(Answer, Generic[Data]):
    """Every successful answer of this surface."""
    success: Literal[True]
    message: str
    data: Data

    @classmethod
    def model_parametrized_name(cls, params: tuple[type[Any], ...]) -> str:
        return f"{params[0].__name__}Envelope"  # components read `conversations.ConversationPageEnvelope`


class Page(Answer):
    total: int = Field(ge=0, description="All the matches, not only this page's")
    limit: int
    offset: int


class Conversation(Answer):
    id: int
    title: str
    user_id: int = Field(description="The owner")
    agent_id: int | None
    conversation_type: str
    status: Literal["active", "archived"]
    is_archived: bool
    is_pinned: bool
    total_messages: int
    unread_count: int = Field(description="Others' messages newer than what the user last listed")
    last_message_at: datetime | None = Field(description="created_at of the newest message listed; "
                                                         "null until the conversation has a message")
    created_at: datetime
    updated_at: datetime
    uuid: str = Field(description=UUID_ID)


class ConversationSession(Answer):
    """A span of activity: messages less than 30 minutes apart."""
    id: int
    session_start: datetime
    session_end: datetime
    messages_count: int
    duration_minutes: int


class ConversationDetails(Conversation):
    sessions: list[ConversationSession]


class ConversationPage(Page):
    conversations: list[Conversation]


class ConversationRef(Answer):
    conversation_id: int


class Attachment(Answer):
    id: int
    file_name: str
    file_type: str | None
    file_size: int | None
    file_path: str | None
    created_at: datetime


class Message(Answer):
    id: int
    conversation_id: int
    content: str
    content_type: ContentType
    sender: Sender
    message_type: Literal["text", "image", "file", "system"]
    status: MessageStatus
    tokens_used: int | None = Field(description="Prompt and completion tokens of an AI reply")
    processing_time: float | None = Field(description="Seconds the AI reply took")
    created_at: datetime
    attachments: list[Attachment]


class MessagePage(Page):
    messages: list[Message]


class AddedMessage(Answer):
    message_id: int
    conversation_id: int
    content: str
    sender: Literal["user", "agent"]
    created_at: datetime
    attachments: list[Attachment]


class AiResponse(Answer):
    message_id: int
    ai_response: str
    tokens_used: int
    processing_time: float = Field(description="Seconds")
    cost: float = Field(ge=0, description="US dollars; 0 when the model has no price (see cost_note)")
    created_at: datetime
    model: str
    cost_note: str = sometimes("Present when the model has no configured price (MODEL_PRICES)")


class SearchResult(Answer):
    message_id: int
    conversation_id: int
    content: str
    sender: Sender
    created_at: datetime


class SearchPage(Page):
    results: list[SearchResult]
    query: str


class Agent(Answer):
    id: int
    name: str
    description: str | None
    model: str | None = Field(description="null: the default model answers")
    system_prompt: str | None
    temperature: float
    is_public: bool
    owner_id: int
    created_at: datetime
    updated_at: datetime


class AgentPage(Page):
    agents: list[Agent]


class AgentRef(Answer):
    agent_id: int


class ActiveAgent(Answer):
    agent_id: int
    name: str
    message_count: int


class DayStats(Answer):
    date: date
    conversations: int
    messages: int


class Dashboard(Answer):
    total_conversations: int
    total_messages: int
    average_response_time: float = Field(description="Seconds, over the user's delivered AI replies (0 without any)")
    most_active_agent: ActiveAgent | None = Field(description="Most replies among the agents the user may see")
    daily_stats: list[DayStats] = Field(min_length=DAYS, max_length=DAYS,
                                        description=f"The last {DAYS} UTC days, today last; days without any are zeros")


class AgentPerformance(Answer):
    agent_id: int
    name: str
    total_conversations: int
    success_rate: float = Field(ge=0, le=100, description="Percent of finished replies delivered (not hidden, "
                                                          "in conversations not deleted)")


class GlobalAnalytics(Answer):
    total_conversations_all_users: int
    total_messages_all_users: int
    average_conversations_per_user: float
    top_performing_agents: list[AgentPerformance] = Field(max_length=TOP_AGENTS,
                                                          description="The agents used in the most conversations")
