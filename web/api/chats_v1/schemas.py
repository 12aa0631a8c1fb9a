"""Request bodies and query strings of the chats API (003), in its own names."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from models.base import MAX_KEY
from web.api.parsing import Metadata, NotBlank, QueryModel, RequestModel

ChatType = Literal["PERSONAL", "GROUP", "SYSTEM"]
ChatStatus = Literal["ACTIVE", "ARCHIVED", "DELETED"]
MessageType = Literal["TEXT", "IMAGE", "FILE", "SYSTEM"]
MessageStatus = Literal["SENDING", "SENT", "DELIVERED", "READ", "FAILED"]


def removable(reaction: str) -> str:
    """A reaction is removed by naming it in one URL segment: a "/" would split it, and URLs
    drop the dot segments "." and ".." (encoded too), so such reactions could not be removed."""
    if "/" in reaction or reaction in (".", ".."):
        raise ValueError("a reaction cannot contain '/' nor be '.' or '..'")
    return reaction


Reaction = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
                     AfterValidator(removable)]
TRIMMED = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])


def reaction_named(segment: str) -> str:
    """The reaction a DELETE URL names, trimmed as `Reaction` trimmed it when it was added
    (by pydantic's rule: `str.strip` would also take control characters it keeps)."""
    return TRIMMED.validate_python(segment)


class CreateChatRequest(RequestModel):
    # `user_id` and `session_id` are fields of the document's Chat, so a client may send them;
    # they are the server's (the caller and the new chat's id) and are ignored.
    user_id: str | None = Field(default=None, exclude=True)
    session_id: str | None = Field(default=None, exclude=True)
    title: NotBlank | None = Field(default=None, min_length=1, max_length=200)
    rag_enabled: bool = False
    chat_type: ChatType = "PERSONAL"
    status: Literal["ACTIVE", "ARCHIVED"] = "ACTIVE"
    chat_metadata: Metadata = None


class ListChatsQuery(QueryModel):
    skip: int = Field(default=0, ge=0, le=MAX_KEY)
    limit: int = Field(default=100, ge=1, le=1000)
    status: Literal["ACTIVE", "ARCHIVED"] | None = None


class UpdateChatStatusRequest(RequestModel):
    status: ChatStatus


class SendMessageRequest(RequestModel):
    # Empty content is 400 "Message content cannot be empty", as on the chat API.
    content: str = Field(max_length=50000)
    is_user: bool = True
    message_type: MessageType = "TEXT"
    status: MessageStatus = "SENT"
    message_metadata: Metadata = None
    parent_message_id: int | None = Field(default=None, ge=1, le=MAX_KEY)
    # The document's Message has them; the server sets them (reactions through their own URL).
    reactions: dict[str, Any] | None = Field(default=None, exclude=True)


class ListMessagesQuery(QueryModel):
    skip: int = Field(default=0, ge=0, le=MAX_KEY)
    limit: int = Field(default=100, ge=1, le=1000)
    thread_id: int | None = Field(default=None, ge=1, le=MAX_KEY)


class UpdateMessageStatusRequest(RequestModel):
    status: MessageStatus


class AddReactionRequest(RequestModel):
    reaction: Reaction


class StatusFrame(BaseModel):
    """A client frame on the chat's WebSocket: `{"type": "message_status", "message_id", "status"}`."""

    model_config = ConfigDict(extra="ignore")

    message_id: int = Field(ge=1, le=MAX_KEY, strict=True)  # true or "118" is no id, as in a JSON body
    status: MessageStatus
