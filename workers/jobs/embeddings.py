"""embed_chunks: chunk a parsed library document and embed its chunks (after `parse_document`).

A long PDF is indexed in slices of `RAG_PAGES_PER_JOB` pages; each slice enqueues the next at
the back of the `documents` queue, so other users' uploads are handled between slices. A
slice that runs twice replaces its own chunks. The document is ready for the RAG API when
`metadata.indexed` is set; chunks stored while no embedding provider answered are found by
keyword search only.
"""
from __future__ import annotations

import logging

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models import Document, DocumentChunk
from models.base import utcnow
from workers import embedding, queues, runtime
from workers.logs import error_text
from workers.retrieval import text
from workers.retrieval.chunking import Piece, chunk_pages, pdf_pages
from workers.settings import Settings

log = logging.getLogger(__name__)


def embed_chunks(document_id: int, start_page: int = 0) -> str:
    """Index pages from `start_page` (0-based) of a READY library document; idempotent."""
    rt = runtime.current()
    settings = rt.settings
    with rt.sessions() as db:
        doc = db.get(Document, document_id)
        if doc is None or doc.status != "READY" or doc.chat_id is not None or (doc.meta or {}).get("indexed"):
            return "skipped"
        owner_id, doc_uuid, mime_type = doc.owner_id, doc.uuid, doc.mime_type
        source = doc.data if mime_type == "application/pdf" else doc.extracted_text
    try:
        if mime_type == "application/pdf":
            pages, total = pdf_pages(source or b"", start_page, settings.rag_pages_per_job)
        else:
            pages, total = [(None, source or "")], 1
        pieces = chunk_pages(pages, settings.rag_chunk_tokens, settings.rag_chunk_overlap)
        vectors, model, problem = embed(settings, pieces)
    except Exception as exc:  # a parser bug must not leave the document half-indexed and silent
        log.exception("indexing document %s failed", document_id)
        fail(document_id, f"The document could not be indexed ({error_text(exc)})")
        return "failed"
    next_page = start_page + settings.rag_pages_per_job
    with rt.sessions() as db:
        store(db, document_id, owner_id, start_page, pieces, vectors, model)
        note_slice(db, document_id, model, problem)
        if next_page >= total:
            finish(db, document_id)
        db.commit()
    if next_page < total:
        queues.enqueue_embedding(rt.redis, document_id, doc_uuid, next_page)
        return "continued"
    return "indexed"


def embed(settings: Settings, pieces: list[Piece]) -> tuple[list | None, str | None, str | None]:
    """Vectors for the pieces, the model that made them, and why there are none if so."""
    provider = embedding.provider(settings)
    if provider is None or not pieces:
        return None, None, None
    try:
        return list(provider.embed([p.content for p in pieces])), provider.model, None
    except embedding.EmbeddingUnavailable as exc:
        log.warning("embedding failed; chunks are stored for keyword search only: %s", exc)
        return None, None, f"The embedding service was unavailable ({exc}): keyword search only"


def store(db: Session, document_id: int, owner_id: int, start_page: int, pieces: list[Piece], vectors: list | None,
          model: str | None) -> None:
    """Replace the chunks of pages after `start_page` with `pieces`, numbered after the earlier ones."""
    later = (DocumentChunk.page_number > start_page) | DocumentChunk.page_number.is_(None)
    db.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document_id, later))
    first = db.scalar(select(func.count()).where(DocumentChunk.document_id == document_id)) or 0
    for i, piece in enumerate(pieces):
        vector = vectors[i] if vectors is not None else None
        db.add(DocumentChunk(document_id=document_id, owner_id=owner_id, chunk_index=first + i,
                             page_number=piece.page_number, content=piece.content, token_count=piece.token_count,
                             embedding=vector, embedding_model=model if vector is not None else None,
                             embedding_dim=len(vector) if vector is not None else None,
                             unspaced_terms=text.unspaced_terms(piece.content)))


def note_slice(db: Session, document_id: int, model: str | None, problem: str | None) -> None:
    """Keep the embedding model and the first problem of any slice: one slice of a long PDF
    stored without vectors leaves its pages to keyword search, whatever the other slices got."""
    doc = db.get(Document, document_id)
    meta = doc.meta or {}
    doc.meta = {**meta, "embedding_model": meta.get("embedding_model") or model,
                "indexing_note": meta.get("indexing_note") or problem}


def finish(db: Session, document_id: int) -> None:
    doc = db.get(Document, document_id)
    count = db.scalar(select(func.count()).where(DocumentChunk.document_id == document_id)) or 0
    doc.meta = {**(doc.meta or {}), "indexed": True, "chunk_count": count}
    doc.updated_at = utcnow()


def fail(document_id: int, reason: str) -> None:
    """End the document FAILED without the chunks of its earlier slices: a failed document is not searched."""
    with runtime.current().sessions() as db:
        db.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document_id))
        db.execute(update(Document).where(Document.id == document_id)
                   .values(status="FAILED", error=reason, updated_at=utcnow()))
        db.commit()


def embed_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback (timeout, killed worker): the document must not stay processing."""
    with runtime.current().sessions() as db:
        doc = db.get(Document, job.args[0])
        indexed = doc is None or (doc.meta or {}).get("indexed")
    if not indexed:
        fail(job.args[0], "Indexing did not finish")
