"""Uploaded files (PDF and text) whose extracted text becomes reply context."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import Base, JSONType, PublicIdMixin, UTCDateTime, utcnow

STATUSES = ("PENDING", "PROCESSING", "READY", "FAILED")


class Document(PublicIdMixin, Base):
    __tablename__ = "documents"
    __table_args__ = (
        # An upload's copy already stored is looked up by its bytes' hash, among the uploader's documents (0011).
        Index("ix_documents_owner_id_content_hash", "owner_id", "content_hash"),
        {"sqlite_autoincrement": True},  # ids of deleted rows are never reused (0007)
    )

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Set for a file attached to one chat (001 uploads); None for a user's library (RAG).
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(100))
    file_size: Mapped[int] = mapped_column(Integer)
    # The upload itself lives in the database so a worker on any host can parse it.
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    # SHA-256 of `data`, hex: the same bytes uploaded again to the same place are answered with this row.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="PENDING")
    error: Mapped[str | None] = mapped_column(Text)
    extracted_text: Mapped[str | None] = deferred(mapped_column(Text))
    page_count: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
