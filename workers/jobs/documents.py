"""parse_document: extract the text of an uploaded PDF or text file (CPU-bound, forking worker)."""
from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PdfReadError
from sqlalchemy import update

from models import Document
from models.base import utcnow
from workers import runtime

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2_000_000


class Unreadable(Exception):
    """The file cannot be turned into text; the message says why, for the user."""


def parse_document(document_id: int) -> str:
    """Extract text into the document row; a bad file ends as FAILED, never as a crashed job."""
    rt = runtime.current()
    with rt.sessions() as db:
        claimed = db.execute(update(Document).where(Document.id == document_id, Document.status == "PENDING")
                             .values(status="PROCESSING", updated_at=utcnow()))
        db.commit()
        if claimed.rowcount != 1:
            return "skipped"
        doc = db.get(Document, document_id)
        data, mime_type = doc.data or b"", doc.mime_type
    try:
        text, pages = extract(data, mime_type)
        values = {"status": "READY", "extracted_text": text, "page_count": pages, "error": None}
    except Unreadable as exc:
        values = {"status": "FAILED", "error": str(exc)}
    except Exception as exc:  # a parser bug must not leave the file PROCESSING
        log.exception("parsing document %s failed", document_id)
        values = {"status": "FAILED", "error": f"The file could not be read ({type(exc).__name__})"}
    with rt.sessions() as db:
        db.execute(update(Document).where(Document.id == document_id).values(updated_at=utcnow(), **values))
        db.commit()
    return values["status"]


def parse_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback (timeout, killed worker): the document must not stay PROCESSING."""
    with runtime.current().sessions() as db:
        db.execute(update(Document).where(Document.id == job.args[0], Document.status.in_(("PENDING", "PROCESSING")))
                   .values(status="FAILED", error="Parsing did not finish", updated_at=utcnow()))
        db.commit()


def extract(data: bytes, mime_type: str) -> tuple[str, int | None]:
    if mime_type != "application/pdf":
        return data.decode("utf-8", errors="replace")[:MAX_TEXT_CHARS], None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("The PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Unreadable(f"The PDF is damaged or not a valid PDF ({type(exc).__name__})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    return text[:MAX_TEXT_CHARS], len(pages)
