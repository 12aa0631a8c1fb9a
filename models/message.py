"""Messages: what users, the assistant and the system said in a chat."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, PublicIdMixin, UTCDateTime, utcnow

ROLES = ("user", "assistant", "system")
STATUSES = ("SENDING", "SENT", "DELIVERED", "READ", "PROCESSING", "CANCELLED", "FAILED")
FINAL_REPLY_STATUSES = ("DELIVERED", "CANCELLED", "FAILED")
# Metadata keys the reply pipeline keeps on an AI message: who asked, the prompt, the agent asked
# and whether the history went with it, what retrieval searched and found (`retrieved` holds the
# text of the asker's private chunks). Every surface hides them from message metadata, and
# clients may not set them.
INTERNAL_META = frozenset({"requested_by", "prompt_message_id", "agent_id", "include_context", "rag", "retrieved",
                           "context_ids", "relevance_score", "search"})


class Message(PublicIdMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_chat_id_id", "chat_id", "id"), {"sqlite_autoincrement": True})

    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="user")
    content: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(20), default="TEXT")
    status: Mapped[str] = mapped_column(String(20), default="DELIVERED")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    model: Mapped[str | None] = mapped_column(String(100))
    upstream: Mapped[str | None] = mapped_column(String(50))
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Numeric(12, 6))
    finish_reason: Mapped[str | None] = mapped_column(String(30))
    error_code: Mapped[str | None] = mapped_column(String(50))
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    is_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    # An exchange the user chose not to keep: answered, then left out of history and context.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def tokens_used(self) -> int | None:
        if self.tokens_in is None and self.tokens_out is None:
            return None
        return (self.tokens_in or 0) + (self.tokens_out or 0)
