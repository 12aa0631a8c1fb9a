"""parse_document: extract the text of an uploaded PDF or text file (CPU-bound, forking worker).

A file that cannot become text ends FAILED with a reason a person can act on. A parse is
bounded: `MAX_PDF_PAGES` pages, pypdf's own limits on every object and stream, and
`DOCUMENT_PARSE_TIMEOUT_S` seconds (the RQ job timeout, also checked between pages because
pypdf swallows some exceptions, RQ's timeout among them, while it reads a damaged object).
"""
from __future__ import annotations

import io
import logging
import time

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PyPdfError
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException
from sqlalchemy import update

from models import Document
from models.base import utcnow
from workers import runtime

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2_000_000
MAX_DETAIL_CHARS = 160  # of pypdf's own words about the damage, quoted in the reason
NESTED_TOO_DEEP = "The PDF is damaged: its objects are nested too deeply to read"


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
        text, pages = extract(data, mime_type, rt.settings.max_pdf_pages, rt.settings.document_parse_timeout_s)
        values = {"status": "READY", "extracted_text": text, "page_count": pages, "error": None}
    except Unreadable as exc:
        values = {"status": "FAILED", "error": str(exc)}
    except JobTimeoutException:
        raise  # RQ fails the job; parse_job_failed gives the reason
    except Exception as exc:  # a parser bug must not leave the file PROCESSING
        log.exception("parsing document %s failed", document_id)
        values = {"status": "FAILED", "error": f"The file could not be read (the parser failed: {type(exc).__name__})"}
    with rt.sessions() as db:
        db.execute(update(Document).where(Document.id == document_id).values(updated_at=utcnow(), **values))
        db.commit()
    return values["status"]


def parse_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback (time limit, lost worker): the document must not stay PROCESSING."""
    if caused_by(exc_value, JobTimeoutException):
        reason = too_slow(job.timeout)
    elif caused_by(exc_value, AbandonedJobError):
        reason = "Parsing stopped: the worker reading the file was lost; upload it again"
    else:
        reason = "Parsing did not finish; upload the file again"
    with runtime.current().sessions() as db:
        db.execute(update(Document).where(Document.id == job.args[0], Document.status.in_(("PENDING", "PROCESSING")))
                   .values(status="FAILED", error=reason, updated_at=utcnow()))
        db.commit()


def caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether `exc` or an exception it was raised from is a `kind`: a time limit that strikes inside a
    database call reaches RQ wrapped in SQLAlchemy's StatementError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def too_slow(seconds: float) -> str:
    return f"Parsing took longer than {seconds:g} s, the limit for one file; the file may be damaged or too complex"


def extract(data: bytes, mime_type: str, max_pages: int, timeout_s: float) -> tuple[str, int | None]:
    """The text of the file and its page count (None for text files); Unreadable with the reason."""
    if mime_type != "application/pdf":
        return data.decode("utf-8-sig", errors="replace")[:MAX_TEXT_CHARS], None
    try:
        # A page tree of `max_pages` pages has fewer than 2 * `max_pages` nodes, unless it is built to hurt.
        with apply_configuration(page_tree_maximum_entries=2 * max_pages):
            return pdf_text(PdfReader(io.BytesIO(data)), max_pages, timeout_s)
    except RecursionError:
        raise Unreadable(NESTED_TOO_DEEP) from None
    except LimitReachedError as exc:
        raise Unreadable(f"The PDF exceeds a safety limit of the reader ({detail(exc)})") from None
    except NotImplementedError as exc:
        raise Unreadable(f"The PDF uses a feature that cannot be read ({detail(exc)})") from None
    except MemoryError:
        raise Unreadable("The PDF needs more memory to read than one file may use") from None
    except PyPdfError as exc:
        if isinstance(exc.__cause__, RecursionError):  # pypdf wraps it while reading objects
            raise Unreadable(NESTED_TOO_DEEP) from None
        raise Unreadable(f"The PDF is damaged or not a valid PDF ({detail(exc)})") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError):
        raise Unreadable("The PDF is damaged or not a valid PDF") from None


def pdf_text(reader: PdfReader, max_pages: int, timeout_s: float) -> tuple[str, int]:
    deadline = time.monotonic() + timeout_s
    if reader.is_encrypted and not reader.decrypt(""):
        raise Unreadable("The PDF is encrypted with a password")
    too_many = f"The PDF has too many pages: the limit is {max_pages}"
    if declared_pages(reader) > max_pages:
        raise Unreadable(too_many)
    try:
        count = len(reader.pages)
    except LimitReachedError:
        raise Unreadable(f"The PDF's page tree is too big to read: more than {max_pages} pages, or nested too deeply") \
            from None
    if count > max_pages:
        raise Unreadable(too_many)
    if count == 0:
        raise Unreadable("The PDF has no pages")
    texts = []
    for page in reader.pages:
        if time.monotonic() > deadline:
            raise Unreadable(too_slow(timeout_s))
        texts.append((page.extract_text() or "").strip())
    text = "\n\n".join(t for t in texts if t)
    if not text:
        raise Unreadable("No text could be extracted from the PDF (its pages may be images, or their content damaged)")
    return text[:MAX_TEXT_CHARS], count


def declared_pages(reader: PdfReader) -> int:
    """The page count the PDF's page tree claims (checked before the tree is walked); 0 if it claims none."""
    try:
        return int(reader.root_object["/Pages"]["/Count"])
    except (KeyError, TypeError, ValueError):
        return 0


def detail(exc: Exception) -> str:
    words = " ".join(str(exc).split()) or type(exc).__name__
    return words if len(words) <= MAX_DETAIL_CHARS else words[:MAX_DETAIL_CHARS - 1] + "…"
