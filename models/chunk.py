"""Chunks of a user's library documents, each with its page and (when embedded) its vector."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, deferred, mapped_column
from sqlalchemy.types import TypeDecorator

from models.base import Base, PublicIdMixin, UTCDateTime, utcnow


class Embedding(TypeDecorator):
    """A float32 vector: pgvector's `vector` on PostgreSQL, packed bytes elsewhere.

    The column has no fixed dimension: each row records its model and dimension, and
    PostgreSQL searches through partial HNSW indexes on `embedding::vector(N)` (migration 0006).
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(VECTOR() if dialect.name == "postgresql" else LargeBinary())

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        vector = np.asarray(value, dtype=np.float32)
        return vector if dialect.name == "postgresql" else vector.tobytes()

    def process_result_value(self, value: Any, dialect) -> np.ndarray | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return np.asarray(value, dtype=np.float32)
        return np.frombuffer(value, dtype=np.float32)


UNSPACED_TERMS = JSON().with_variant(ARRAY(Text), "postgresql")


class DocumentChunk(PublicIdMixin, Base):
    __tablename__ = "document_chunks"
    __table_args__ = (UniqueConstraint("document_id", "chunk_index"),)

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # Denormalised from the document: every search is scoped to one user's chunks.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    chunk_index: Mapped[int] = mapped_column(Integer)
    page_number: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[np.ndarray | None] = deferred(mapped_column(Embedding()))
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
    # The characters and character pairs of its Chinese, Japanese and Korean runs, and the words written
    # against a run (workers.retrieval.text.unspaced_terms); PostgreSQL's keyword search finds them by a GIN index.
    unspaced_terms: Mapped[list[str] | None] = deferred(mapped_column(UNSPACED_TERMS))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
