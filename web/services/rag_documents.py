"""The user's document library (004): upload, index, read back, delete.

A library document is a `Document` without a chat. An upload is checked by its content
(a PDF, or valid UTF-8 text), stored, then parsed and indexed by jobs on the `documents`
queue. For this API a document is `processing` until its chunks are stored, then `ready`,
or `failed` with a reason.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis
from rq.job import Job
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models import Document, DocumentChunk, Message, User
from web.errors import ApiError, BadRequest, NotFound, ServiceUnavailable
from web.services import document_quota, rag_datasets, rows
from web.services.documents import content_hash, stored_copy, stored_name
from workers import queues, runtime

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
SMALL_UPLOAD_BYTES = 512 * 1024  # goes to the front of the ingestion queue
PDF_MAGIC = b"%PDF-"
MARKDOWN_SUFFIXES = (".md", ".markdown")
FILE_TYPES = {"application/pdf": "pdf", "text/markdown": "markdown", "text/plain": "text"}


@dataclass
class Upload:
    document: Document
    job: Job | None  # the first indexing job, to wait on; None for a duplicate
    duplicate: bool  # the user's library held these bytes already: that document, nothing stored anew


def sniff(filename: str, data: bytes) -> str:
    """The MIME type from the content: a PDF, or UTF-8 text (Markdown by its name); else 400."""
    if data.lstrip()[:1024].startswith(PDF_MAGIC):
        return "application/pdf"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise BadRequest("Unsupported file: upload a PDF, or a plain text or Markdown file in UTF-8")
    if not any(ch.isprintable() and not ch.isspace() for ch in text):
        raise BadRequest("The file has no readable text: only control characters and spaces")
    return "text/markdown" if filename.lower().endswith(MARKDOWN_SUFFIXES) else "text/plain"


def upload(db: Session, redis: Redis, user: User, filename: str, data: bytes, dataset_uuid: str | None) -> Upload:
    """Store the file and enqueue its indexing, or answer the user's library document of the same
    bytes (unless it FAILED), which joins the dataset named with the copy."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError("File too large: the maximum is 10 MB", status=413)
    if not data.strip():
        raise BadRequest("The file is empty")
    mime_type = sniff(filename, data)
    digest = content_hash(data)
    document_quota.lock_uploads(db, user)
    try:  # after the lock, which waits on SQLite for a deletion committing: the dataset as it is then
        dataset = rag_datasets.dataset_for(db, user, dataset_uuid, kept=True) if dataset_uuid else None
    except NotFound:
        db.rollback()  # release the user's upload lock now, not at the end of the request
        raise
    copy = stored_copy(db, user, None, digest)
    if copy is not None:
        if dataset is not None:
            rag_datasets.join(db, dataset, copy.id)
        db.commit()
        return Upload(copy, None, duplicate=True)
    document_quota.check_room(db, user, len(data))
    doc = Document(owner_id=user.id, chat_id=None, filename=stored_name(filename, "document"), mime_type=mime_type,
                   file_size=len(data), data=data, content_hash=digest, meta={})
    db.add(doc)
    db.flush()
    if dataset is not None:
        rag_datasets.join(db, dataset, doc.id)
    db.commit()
    try:
        job = queues.enqueue_ingestion(redis, doc.id, doc.uuid, small=len(data) <= SMALL_UPLOAD_BYTES,
                                       parse_timeout_s=runtime.current().settings.document_parse_timeout_s)
    except Exception:
        log.exception("could not enqueue the ingestion of document %s", doc.uuid)
        doc.status, doc.error = "FAILED", "Processing could not be started; upload the file again"
        db.commit()
        raise ServiceUnavailable("The file was stored, but its processing could not be started; try again") from None
    return Upload(doc, job, duplicate=False)


def wait_indexed(job: Job, wait_s: float) -> None:
    """Give a small document the chance to be ready before the upload is answered."""
    job.latest_result(timeout=int(wait_s))


def status(doc: Document) -> str:
    if doc.status == "FAILED":
        return "failed"
    return "ready" if doc.status == "READY" and (doc.meta or {}).get("indexed") else "processing"


def document_for(db: Session, user: User, document_uuid: str, *, session_files: bool = False) -> Document:
    """One of the user's library documents (or, with `session_files`, a file they uploaded to a
    session: 001's files count against the same limits); 404 for an unknown one or someone else's."""
    query = select(Document).where(Document.uuid == document_uuid, Document.owner_id == user.id)
    doc = db.scalar(query if session_files else query.where(Document.chat_id.is_(None)))
    if doc is None:
        raise NotFound("Document not found")
    return doc


def as_stored(db: Session, doc: Document) -> Document:
    """The document as stored now (after its indexing, or another request's changes); 404 when its
    owner deleted it meanwhile."""
    found = db.scalar(select(Document).where(Document.id == doc.id).execution_options(populate_existing=True))
    if found is None:
        raise NotFound("Document not found")
    return found


def library_page(db: Session, user: User, limit: int, offset: int) -> tuple[int, list[Document]]:
    """How many library documents the user has, and one page of them, newest first (by id
    among those stored in the same instant, so pages neither repeat nor skip one)."""
    library = select(Document).where(Document.owner_id == user.id, Document.chat_id.is_(None))
    total = db.scalar(select(func.count()).select_from(library.subquery())) or 0
    page = list(db.scalars(library.order_by(Document.created_at.desc(), Document.id.desc())
                           .limit(limit).offset(offset)))
    return total, page


def chunk_counts(db: Session, doc_ids: list[int]) -> dict[int, int]:
    """How many chunks each document has, in one query."""
    found = dict.fromkeys(doc_ids, 0)
    counted = db.execute(select(DocumentChunk.document_id, func.count())
                         .where(DocumentChunk.document_id.in_(doc_ids)).group_by(DocumentChunk.document_id))
    found.update((doc_id, count) for doc_id, count in counted)
    return found


def chunk_of(db: Session, doc: Document, chunk_index: int) -> DocumentChunk:
    chunk = db.scalar(select(DocumentChunk).where(DocumentChunk.document_id == doc.id,
                                                  DocumentChunk.chunk_index == chunk_index))
    if chunk is None:
        raise NotFound("Chunk not found")
    return chunk


def remove(db: Session, doc: Document) -> None:
    """Delete the document with its chunks and vectors (and its dataset memberships); a session
    file is no longer its session's context."""
    rag_datasets.touch_datasets_of(db, doc.id)
    db.execute(delete(DocumentChunk).where(DocumentChunk.document_id == doc.id))
    rows.delete_row(db, doc, "Document not found")


def cited_in_chat(db: Session, chat_id: int) -> list[dict]:
    """Each document chunk the chat's replies drew on, once, in the order first used, with
    `document_deleted` set for documents deleted since."""
    seen: dict[tuple[str, int], dict] = {}
    for sources in db.scalars(select(Message.sources).where(Message.chat_id == chat_id, Message.role == "assistant",
                                                            Message.sources.is_not(None)).order_by(Message.id)):
        for source in sources or []:
            seen.setdefault((source["document_id"], source["chunk_index"]), source)
    gone = deleted_of(db, {document_id for document_id, _ in seen})
    return [{**source, "document_deleted": source["document_id"] in gone} for source in seen.values()]


def deleted_of(db: Session, document_uuids: set[str]) -> set[str]:
    """Those of the cited documents that were deleted since (their rows are gone)."""
    if not document_uuids:
        return set()
    return document_uuids - set(db.scalars(select(Document.uuid).where(Document.uuid.in_(document_uuids))))
