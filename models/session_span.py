"""Chat session history: the spans of continuous activity in a chat (002's `chat_session_history`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class SessionSpan(Base):
    """Messages less than a gap apart belong to one span; `session_end` is its latest message."""

    __tablename__ = "chat_session_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    session_start: Mapped[datetime] = mapped_column(UTCDateTime)
    session_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    messages_count: Mapped[int] = mapped_column(Integer, default=0)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
