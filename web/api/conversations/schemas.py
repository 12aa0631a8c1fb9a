"""Request bodies and query strings of the conversations API (002), with its defaults."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from models.base import MAX_KEY
from web.api.parsing import QueryModel, RequestModel, readable

TITLE_MAX = 200  # the chats' title column (002's schema says 255; every surface shares the column)
CONTENT_MAX = 50_000


Text = Annotated[str, AfterValidator(readable)]


class Page(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=MAX_KEY)


class ListConversationsQuery(Page):
    archived: bool = False
    pinned: bool | None = None


class MessagesQuery(Page):
    limit: int = Field(default=50, ge=1, le=200)


class CreateConversationRequest(RequestModel):
    title: Text = Field(default="New conversation", min_length=1, max_length=TITLE_MAX)
    agent_id: int | None = Field(default=None, ge=1, le=MAX_KEY)
    conversation_type: str = Field(default="chat", min_length=1, max_length=50)
    is_pinned: bool = False


class UpdateConversationRequest(RequestModel):
    title: Text | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    is_pinned: bool | None = None
    is_archived: bool | None = None
    status: Literal["active", "archived"] | None = None
    agent_id: int | None = Field(default=None, ge=1, le=MAX_KEY)  # null removes the agent

    @model_validator(mode="after")
    def _consistent(self) -> UpdateConversationRequest:
        if not self.model_fields_set & {"title", "is_pinned", "is_archived", "status", "agent_id"}:
            raise ValueError("give at least one of title, is_pinned, is_archived, status, agent_id")
        for name in ("title", "is_pinned"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.status is not None and self.is_archived is not None and (self.status == "archived") != self.is_archived:
            raise ValueError("status and is_archived disagree")
        return self

    def changes(self) -> dict[str, Any]:
        """The given fields as the chat's own columns (archived ⇔ status ARCHIVED)."""
        given = self.model_dump(include=self.model_fields_set & {"title", "is_pinned", "agent_id"})
        archived = self.is_archived if self.is_archived is not None else (
            None if self.status is None else self.status == "archived")
        if archived is not None:
            given["status"] = "ARCHIVED" if archived else "ACTIVE"
        return given


class AttachmentIn(RequestModel):
    file_name: str = Field(min_length=1, max_length=255)
    file_type: str | None = Field(default=None, max_length=100)
    file_size: int | None = Field(default=None, ge=0, le=MAX_KEY)
    file_path: str | None = Field(default=None, max_length=2000)


class AddMessageRequest(RequestModel):
    content: Text = Field(min_length=1, max_length=CONTENT_MAX)
    sender_type: Literal["user", "agent"] = "user"
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10)


class AiResponseRequest(RequestModel):
    message: Text = Field(min_length=1, max_length=CONTENT_MAX)
    agent_id: int | None = Field(default=None, ge=1, le=MAX_KEY)
    include_context: bool = True


class SearchQuery(Page):
    query: Text = Field(min_length=1, max_length=500)

    @field_validator("query", mode="before")
    @classmethod
    def _nul_separates(cls, value: object) -> object:
        """A NUL only separates words, like any other punctuation (this runs before the NUL check)."""
        return value.replace("\x00", " ") if isinstance(value, str) else value


class AgentRequest(RequestModel):
    name: Text = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    model: str | None = Field(default=None, min_length=1, max_length=100)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    is_public: bool = False


class AgentUpdate(RequestModel):
    name: Text | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    model: str | None = Field(default=None, min_length=1, max_length=100)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    is_public: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> AgentUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in ("name", "temperature", "is_public"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self
