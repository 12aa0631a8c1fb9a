"""/api/chat/sessions/{id}/upload and its files: PDFs whose text becomes context."""
from __future__ import annotations

from flask import g, jsonify, request

from models import Document
from web.api.described import accepts, responds
from web.api.sessions import bp
from web.api.sessions.answers import FileList, FileUploaded, OneFile
from web.api.sessions.schemas import UploadForm
from web.api.sessions.serializers import file_view
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import BadRequest
from web.redis_client import get_redis
from web.request_checks import takes_upload
from web.services import chats, documents, sessions

UPLOAD_WAIT_S = 5


@bp.post("/api/chat/sessions/<int:session_id>/upload")
@accepts(form=UploadForm)
@responds(200, FileUploaded)
@login_required
@takes_upload
def upload(session_id: int):
    """Upload a PDF (multipart field `file`, at most 10 MB) whose text becomes the session's context.

    409 with the user's documents at `MAX_DOCUMENTS_PER_USER`, 413 past `MAX_DOCUMENT_BYTES_PER_USER`
    (library documents and session files together): delete documents to make room.

    A PDF the user already uploaded to this session (the same bytes, unless that file FAILED) is
    not stored again: the answer is that file, with `duplicate` true.
    """
    db, redis = get_db(), get_redis()
    chat, member = sessions.session_to_continue(db, g.user, session_id)
    chats.check_may_upload(member)
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("Send the PDF as multipart form field 'file'")
    stored = documents.store_pdf(db, redis, g.user, chat, upload.filename or "", upload.read(),
                                 sessions.ARCHIVED_SESSION)
    if not stored.duplicate:
        documents.wait_parsed(redis, stored.document, UPLOAD_WAIT_S)
    doc = documents.stored_file(db, stored.document)
    return jsonify({"file": file_view(doc), "message": upload_message(doc, stored.duplicate),
                    "duplicate": stored.duplicate})


def upload_message(doc: Document, duplicate: bool) -> str:
    if duplicate:
        return "This file was already uploaded to this session; it was not stored again"
    if doc.status == "READY":
        return "File uploaded successfully"
    if doc.status == "FAILED":
        return f"File uploaded, but its text could not be read: {doc.error}"
    return "File uploaded; its text is still being read (GET the session's files to see when it is ready)"


@bp.get("/api/chat/sessions/<int:session_id>/files")
@responds(200, FileList)
@login_required
def list_files(session_id: int):
    """The files uploaded to a session."""
    db = get_db()
    chat, _ = sessions.session_for(db, g.user, session_id)
    return jsonify({"files": [file_view(d) for d in documents.chat_files(db, chat)]})


@bp.get("/api/chat/sessions/<int:session_id>/files/<int:file_id>")
@responds(200, OneFile)
@login_required
def get_file(session_id: int, file_id: int):
    """One file of a session, with its extracted text once parsed."""
    db = get_db()
    chat, _ = sessions.session_for(db, g.user, session_id)
    return jsonify({"file": file_view(documents.chat_file(db, chat, file_id))})
