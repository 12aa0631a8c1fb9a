"""Candidate chunks from the database: nearest vectors and keyword matches, per dialect.

PostgreSQL searches with pgvector (a partial HNSW index per common dimension, iterative
scans so a user's filter still fills the result) and `to_tsvector`/`ts_rank_cd`; SQLite
loads the user's vectors into numpy for an exact search and ranks keywords with BM25.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import ARRAY, ColumnElement, Select, Text, cast, func, or_, select, text as sql_text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models import Document, DocumentChunk, dataset_documents
from workers.retrieval import text


@dataclass(frozen=True)
class Scope:
    """Whose chunks to search: one user's, optionally one of their datasets, leaving out the
    documents in `indexing` (see `still_indexing`)."""

    owner_id: int
    dataset_id: int | None = None
    indexing: tuple[int, ...] = ()

    def where(self) -> list[ColumnElement[bool]]:
        # Left out by a list of the few unfinished documents, not joined to the finished ones: a join
        # makes PostgreSQL scan all the user's chunks instead of walking the HNSW index.
        clauses = [DocumentChunk.owner_id == self.owner_id]
        if self.dataset_id is not None:
            clauses.append(DocumentChunk.document_id.in_(dataset_members(self.dataset_id)))
        if self.indexing:
            clauses.append(DocumentChunk.document_id.not_in(self.indexing))
        return clauses


def dataset_members(dataset_id: int) -> Select:
    """The ids of the documents in the dataset, as a subquery."""
    return select(dataset_documents.c.document_id).where(dataset_documents.c.dataset_id == dataset_id)


def still_indexing(db: Session, scope: Scope) -> tuple[int, ...]:
    """The library documents in scope whose indexing has not finished (`metadata.indexed`) nor
    failed: a long PDF's first slices are not searched while its later pages are indexed."""
    where = [Document.owner_id == scope.owner_id, Document.chat_id.is_(None), Document.status != "FAILED",
             ~Document.meta["indexed"].as_boolean().is_(True)]
    if scope.dataset_id is not None:
        where.append(Document.id.in_(dataset_members(scope.dataset_id)))
    return tuple(db.scalars(select(Document.id).where(*where)))


def is_postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def nearest(db: Session, scope: Scope, query: np.ndarray, model: str, limit: int,
            with_vectors: bool = False) -> list[tuple[int, float, np.ndarray | None]]:
    """(chunk id, cosine similarity, vector if asked) of the `limit` nearest chunks, best first."""
    dim = int(query.shape[0])
    where = [*scope.where(), DocumentChunk.embedding_model == model, DocumentChunk.embedding_dim == dim]
    if is_postgresql(db):
        tune_hnsw(db, limit)
        # The literal dimension in both the cast and the filter lets the planner use that HNSW index.
        distance = cast(DocumentChunk.embedding, VECTOR(dim)).cosine_distance(query.tolist())
        columns: list[Any] = [DocumentChunk.id, distance] + ([DocumentChunk.embedding] if with_vectors else [])
        rows = db.execute(select(*columns).where(*where, sql_text(f"embedding_dim = {dim}"))
                          .order_by(distance).limit(limit)).all()
        return [(row[0], 1.0 - float(row[1]), row[2] if with_vectors else None) for row in rows]
    rows = db.execute(select(DocumentChunk.id, DocumentChunk.embedding).where(*where)).all()
    if not rows:
        return []
    matrix = np.vstack([row[1] for row in rows])
    similarity = matrix @ query
    order = np.argsort(-similarity, kind="stable")[:limit]
    return [(rows[i][0], float(similarity[i]), matrix[i] if with_vectors else None) for i in order]


def tune_hnsw(db: Session, limit: int) -> None:
    """Let HNSW look at enough candidates, and keep scanning when the user's filter drops them."""
    db.execute(sql_text(f"SET LOCAL hnsw.ef_search = {max(40, min(limit * 2, 1000))}"))
    try:
        with db.begin_nested():
            db.execute(sql_text("SET LOCAL hnsw.iterative_scan = strict_order"))
    except DBAPIError:
        pass  # pgvector before 0.8 has no iterative scans


def keyword_matches(db: Session, scope: Scope, query_terms: list[str], limit: int) -> list[tuple[int, float]]:
    """(chunk id, keyword rank) of the chunks containing any query word, best first."""
    if not query_terms:
        return []
    if not is_postgresql(db):
        rows = db.execute(select(DocumentChunk.id, DocumentChunk.content).where(*scope.where())).all()
        return best_by_bm25(query_terms, rows, len(rows), limit)
    unspaced = [t for t in query_terms if text.UNSPACED.search(t)]
    spaced = [t for t in query_terms if t not in unspaced]
    document = func.to_tsvector(sql_text("'english'::regconfig"), DocumentChunk.content)
    query = func.to_tsquery(sql_text("'english'::regconfig"), " | ".join(spaced))
    if not unspaced:
        rank = func.ts_rank_cd(document, query)
        rows = db.execute(select(DocumentChunk.id, rank).where(*scope.where(), document.op("@@")(query))
                          .order_by(rank.desc(), DocumentChunk.id).limit(limit)).all()
        return [(row[0], float(row[1])) for row in rows]
    # Chinese, Japanese or Korean words: the chunks sharing a character pair with the query (the
    # index of migration 0008), or another of its words (in the full-text index, or written against
    # a run: in the same index), are scored in Python.
    holding = or_(shares_a_pair(query_terms), document.op("@@")(query)) if spaced else shares_a_pair(unspaced)
    rows = db.execute(select(DocumentChunk.id, DocumentChunk.content).where(*scope.where(), holding)).all()
    in_scope = db.scalar(select(func.count()).select_from(DocumentChunk).where(*scope.where())) or 0
    return best_by_bm25(query_terms, rows, in_scope, limit)


def shares_a_pair(unspaced_terms: list[str]) -> ColumnElement[bool]:
    """PostgreSQL: the chunk holds one of these characters or character pairs, or one of these words
    written against them (migration 0008's index)."""
    return DocumentChunk.unspaced_terms.op("&&")(cast(unspaced_terms, ARRAY(Text)))


def best_by_bm25(query_terms: list[str], rows: list[Any], corpus_size: int, limit: int) -> list[tuple[int, float]]:
    """The `limit` best of (chunk id, content) rows by BM25 among `corpus_size` chunks."""
    scores = text.bm25(query_terms, [row[1] for row in rows], corpus_size=corpus_size)
    ranked = sorted(((rows[i][0], s) for i, s in enumerate(scores) if s > 0), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]


def chunk_rows(db: Session, chunk_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What a citation and the prompt need of each chunk."""
    rows = db.execute(
        select(DocumentChunk.id, DocumentChunk.uuid, DocumentChunk.chunk_index, DocumentChunk.page_number,
               DocumentChunk.content, Document.uuid, Document.filename)
        .join(Document, Document.id == DocumentChunk.document_id).where(DocumentChunk.id.in_(chunk_ids))
    ).all()
    return {row[0]: {"chunk_id": row[1], "chunk_index": row[2], "page_number": row[3], "content": row[4],
                     "document_id": row[5], "filename": row[6]} for row in rows}
