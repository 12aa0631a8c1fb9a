"""Uploaded files: check, store, hand to the parser, read back."""
from __future__ import annotations

import hashlib
import logging
import os.path
import re
from dataclasses import dataclass

from redis import Redis
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Chat, Document, User
from web.errors import ApiError, BadRequest, NotFound, ServiceUnavailable
from web.services import chats, document_quota
from workers import queues, runtime

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_NAME_CHARS = 255  # the filename column
MAX_EXTENSION_CHARS = 16
PDF_MAGIC = b"%PDF-"


@dataclass
class StoredFile:
    document: Document
    duplicate: bool  # the user had stored these bytes there already: that document, nothing stored anew


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_copy(db: Session, user: User, chat_id: int | None, digest: str) -> Document | None:
    """The user's document of these bytes already stored in the same place (their library for
    `chat_id` None, else that session), unless it FAILED: a failed file may be uploaded anew.

    Read under document_quota.lock_uploads, so of two identical uploads at once the second finds
    the first; kept from deletion until the transaction ends (FOR KEY SHARE)."""
    return db.scalar(select(Document).where(Document.owner_id == user.id, Document.content_hash == digest,
                                            Document.chat_id == chat_id, Document.status != "FAILED")
                     .order_by(Document.id).limit(1).with_for_update(key_share=True))


def stored_name(filename: str, default: str) -> str:
    """The name an upload is kept under: at most 255 characters, a longer one cut before its
    extension (clients show and save files by it), and never a NUL (PostgreSQL refuses one; a
    multipart header can carry it, percent-encoded in `filename*`). Only the last part of a path
    is kept (RFC 7578 4.2: a client's directories are not part of the name, and reached prompts)."""
    if "\x00" in filename:
        raise BadRequest("The file name must not contain NUL characters")
    filename = re.split(r"[/\\]", filename)[-1]
    if len(filename) <= MAX_NAME_CHARS:
        return filename or default
    stem, extension = os.path.splitext(filename)
    if len(extension) > MAX_EXTENSION_CHARS:
        stem, extension = filename, ""
    return stem[:MAX_NAME_CHARS - len(extension)] + extension


def store_pdf(db: Session, redis: Redis, user: User, chat: Chat, filename: str, data: bytes,
              archived: str) -> StoredFile:
    """Keep a PDF (checked by its content, not its name) and enqueue its parsing, or answer the
    user's file of the same bytes in this chat; 400 `archived` when the chat was archived since the
    caller checked it."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError("File too large: the maximum is 10 MB", status=413)
    if not data:
        raise BadRequest("The file is empty")
    if not data.lstrip()[:1024].startswith(PDF_MAGIC):
        raise BadRequest("Only PDF files are supported (the file's content is not a PDF)")
    name, digest = stored_name(filename, "document.pdf"), content_hash(data)
    document_quota.lock_uploads(db, user)
    # deleted meanwhile: 404; archived meanwhile: 400, as the upload's earlier check answers
    chats.lock_chat(db, chat, missing="Chat session not found", statuses=chats.VISIBLE, archived=archived)
    copy = stored_copy(db, user, chat.id, digest)
    if copy is not None:
        db.commit()
        return StoredFile(copy, duplicate=True)
    document_quota.check_room(db, user, len(data))
    doc = Document(owner_id=user.id, chat_id=chat.id, filename=name, mime_type="application/pdf",
                   file_size=len(data), data=data, content_hash=digest)
    db.add(doc)
    db.commit()
    try:
        parse_job(redis, doc)
    except Exception:
        log.exception("could not enqueue the parsing of document %s", doc.uuid)
        doc.status, doc.error = "FAILED", "Processing could not be started; upload the file again"
        db.commit()
        raise ServiceUnavailable("The file was stored, but its processing could not be started; try again") from None
    return StoredFile(doc, duplicate=False)


def wait_parsed(redis: Redis, doc: Document, wait_s: int) -> None:
    """Give a quick parse the chance to finish before answering the upload."""
    parse_job(redis, doc).latest_result(timeout=wait_s)


def stored_file(db: Session, doc: Document) -> Document:
    """The file as stored now (after waiting for its parse); 404 when it was deleted meanwhile,
    alone or with its session."""
    found = db.scalar(select(Document).where(Document.id == doc.id).execution_options(populate_existing=True))
    if found is None:
        session_left = db.scalar(select(Chat.id).where(Chat.id == doc.chat_id))
        raise NotFound("File not found" if session_left else "Chat session not found")
    return found


def parse_job(redis: Redis, doc: Document) -> Job:
    """The document's parse job, enqueued on the first call."""
    timeout_s = runtime.current().settings.document_parse_timeout_s
    return queues.enqueue_document(redis, doc.id, doc.uuid, timeout_s=timeout_s)


def chat_files(db: Session, chat: Chat) -> list[Document]:
    return list(db.scalars(select(Document).where(Document.chat_id == chat.id).order_by(Document.id)))


def chat_file(db: Session, chat: Chat, file_id: int) -> Document:
    doc = db.scalar(select(Document).where(Document.chat_id == chat.id, Document.id == file_id))
    if doc is None:
        raise NotFound("File not found")
    return doc
