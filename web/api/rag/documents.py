"""/documents of the RAG API (004): upload, read, chunks, a session's documents, delete."""
from __future__ import annotations

from flask import g, jsonify, request
from pydantic import ValidationError

from models import Document
from web.api.described import accepts, responds
from web.api.parsing import parse_query
from web.api.rag import answers, bp
from web.api.rag.schemas import PageQuery, UploadBody, UploadForm
from web.api.rag.serializers import chunk_view, document_view
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import BadRequest, Unprocessable, validation_details
from web.redis_client import get_redis
from web.request_checks import takes_upload
from web.services import rag_datasets, rag_documents
from web.services.rag_chat import session_for

UPLOAD_WAIT_S = 5


def shown(docs: list[Document], content: str | None = None) -> list[dict]:
    """Documents as this API shows them (with their chunk counts and datasets), in two queries
    whatever their number."""
    db = get_db()
    ids = [doc.id for doc in docs]
    counts, datasets = rag_documents.chunk_counts(db, ids), rag_datasets.datasets_of_documents(db, ids)
    return [document_view(doc, counts[doc.id], datasets[doc.id], content) for doc in docs]


def show(doc: Document, content: str | None = None) -> dict:
    return shown([doc], content)[0]


@bp.post("/documents/upload")
@accepts(form=UploadBody)
@responds(200, answers.UploadedDocument, "The stored document, `ready` when it was indexed within 5 s, else "
                                         "`processing`; or, for a copy of one already stored, that document")
@login_required
@takes_upload
def upload():
    """Upload a PDF, text or Markdown file (10 MB at most) to the user's library.

    409 with the user's documents at `MAX_DOCUMENTS_PER_USER`, 413 past `MAX_DOCUMENT_BYTES_PER_USER`
    (library documents and session files together): delete documents to make room.

    A `multipart/form-data` body: the file in field `file`, and optionally `dataset_id` (one of
    the user's datasets, which the document joins).

    A file whose bytes the user's library already holds (unless that document failed) is not
    stored again: the answer is that document, with `duplicate` true (it joins `dataset_id`).
    """
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("Send the file as multipart form field 'file'")
    try:
        form = UploadForm.model_validate(request.form.to_dict())
    except ValidationError as exc:
        raise Unprocessable(validation_details(exc, "form")) from None
    db = get_db()
    stored = rag_documents.upload(db, get_redis(), g.user, upload.filename or "", upload.read(),
                                  str(form.dataset_id) if form.dataset_id else None)
    if stored.job is not None:
        rag_documents.wait_indexed(stored.job, UPLOAD_WAIT_S)
    doc = rag_documents.as_stored(db, stored.document)
    return jsonify({**show(doc, doc.extracted_text), "duplicate": stored.duplicate})


@bp.get("/documents")
@responds(200, answers.DocumentList)
@login_required
def list_documents():
    """The user's library documents, newest first, a page at a time; `total_count` counts them all."""
    query = parse_query(PageQuery, error_status=400)
    total, docs = rag_documents.library_page(get_db(), g.user, query.limit, query.offset)
    return jsonify({"documents": shown(docs), "total_count": total})


@bp.get("/documents/<document_id>")
@responds(200, answers.Document)
@login_required
def get_document(document_id: str):
    """A document with its extracted text and processing status; `/chat/send` searches it once it is `ready`."""
    doc = rag_documents.document_for(get_db(), g.user, document_id)
    return jsonify(show(doc, doc.extracted_text))


@bp.get("/documents/<document_id>/chunks/<int:chunk_index>")
@responds(200, answers.Chunk)
@login_required
def get_chunk(document_id: str, chunk_index: int):
    """One chunk of a document, with its page number."""
    db = get_db()
    doc = rag_documents.document_for(db, g.user, document_id)
    chunk = rag_documents.chunk_of(db, doc, chunk_index)
    return jsonify(chunk_view(doc, chunk, rag_documents.chunk_counts(db, [doc.id])[doc.id]))


@bp.get("/documents/session/<session_id>")
@responds(200, answers.SessionDocuments)
@login_required
def session_documents(session_id: str):
    """The document chunks a session's replies drew on."""
    db = get_db()
    chat, _ = session_for(db, g.user, session_id)
    documents = [{"document_id": s["document_id"], "chunk_index": s["chunk_index"], "document_name": s["filename"],
                  "page_number": s.get("page_number"), "document_deleted": s["document_deleted"]}
                 for s in rag_documents.cited_in_chat(db, chat.id)]
    return jsonify({"documents": documents, "total_count": len(documents)})


@bp.delete("/documents/<document_id>")
@responds(200, answers.DocumentDeleted)
@login_required
def delete_document(document_id: str):
    """Delete a document with its chunks and vectors, or a file the user uploaded to a session
    (its `document_id` on `/api/chat/sessions/{id}/files`), which frees its room in the user's limits."""
    db = get_db()
    rag_documents.remove(db, rag_documents.document_for(db, g.user, document_id, session_files=True))
    return jsonify({"message": "Document deleted successfully"})
