"""A chat (conversation, session) and its participants."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, PublicIdMixin, UTCDateTime, utcnow

CHAT_TYPES = ("DIRECT", "GROUP", "CHANNEL")
CHAT_STATUSES = ("ACTIVE", "ARCHIVED", "DELETED")
PARTICIPANT_ROLES = ("OWNER", "ADMIN", "MEMBER")


class Chat(PublicIdMixin, Base):
    __tablename__ = "chats"
    __table_args__ = {"sqlite_autoincrement": True}  # ids of deleted rows are never reused (0007)

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    chat_type: Mapped[str] = mapped_column(String(20), default="DIRECT")
    status: Mapped[str] = mapped_column(String(20), default="ACTIVE", index=True)
    is_private: Mapped[bool] = mapped_column(Boolean, default=False)
    is_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str] | None] = mapped_column(JSONType)
    ai_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    ai_model: Mapped[str | None] = mapped_column(String(100))
    ai_persona: Mapped[str | None] = mapped_column(Text)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    temperature: Mapped[float] = mapped_column(Float, default=0.7)
    max_tokens: Mapped[int] = mapped_column(Integer, default=2048)
    rag_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="chat", cascade="all, delete-orphan", passive_deletes=True
    )


class Participant(Base):
    __tablename__ = "chat_participants"
    __table_args__ = (UniqueConstraint("chat_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="MEMBER")
    can_send_messages: Mapped[bool] = mapped_column(Boolean, default=True)
    can_upload_files: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    chat: Mapped[Chat] = relationship(back_populates="participants")
