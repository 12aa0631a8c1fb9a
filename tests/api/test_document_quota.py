"""Per-user document limits: library documents (004) and session files (001) counted together."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from httpx_sse import connect_sse

from tests.api.rag_helpers import upload as upload_document
from tests.api.test_session_files import new_session, upload as upload_file
from tests.pdfs import text_pdf
from workers import runtime


def test_the_document_count_limit_counts_library_documents_and_session_files(api, alice, make_user, monkeypatch):
    """One account could keep any number of documents (each up to 10 MB, parsed and embedded)."""
    monkeypatch.setattr(runtime.current().settings, "max_documents_per_user", 2)
    session_id = new_session(api, alice)
    kept = upload_document(api, alice, "notes.txt", b"Notes about llamas.")
    assert kept.status_code == 200, kept.text
    assert upload_file(api, alice, session_id, text_pdf(["Session notes."])).status_code == 200

    refused = [upload_document(api, alice, "more.txt", b"More notes."),
               upload_file(api, alice, session_id, text_pdf(["More session notes."]))]
    for answer in refused:
        assert answer.status_code == 409, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("Document limit reached: you keep 2 documents and an account may keep 2 "
                                 "(library documents and session files together); delete documents"), detail
    assert len(api.get("/documents", headers=alice.headers).json()["documents"]) == 1
    assert len(api.get(f"/api/chat/sessions/{session_id}/files", headers=alice.headers).json()["files"]) == 1

    assert upload_document(api, make_user("bob"), "bob.txt", b"Bob's own room.").status_code == 200
    assert api.delete(f"/documents/{kept.json()['id']}", headers=alice.headers).status_code == 200
    assert upload_document(api, alice, "more.txt", b"More notes.").status_code == 200


def test_the_byte_limit_counts_library_documents_and_session_files(api, alice, monkeypatch):
    pdf = text_pdf(["Session notes."])
    monkeypatch.setattr(runtime.current().settings, "max_document_bytes_per_user", len(pdf) + 1000)
    session_id = new_session(api, alice)
    assert upload_file(api, alice, session_id, pdf).status_code == 200
    assert upload_document(api, alice, "full.txt", b"x" * 1000).status_code == 200  # exactly the limit

    another_pdf = text_pdf(["Other notes."])  # not the same bytes: those would be answered with the stored file
    for answer in (upload_document(api, alice, "one.txt", b"y"), upload_file(api, alice, session_id, another_pdf)):
        assert answer.status_code == 413, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith(f"Document storage limit reached: your documents take {len(pdf) + 1000} bytes of "
                                 f"the {len(pdf) + 1000} bytes an account may keep (library documents and session "
                                 "files together), and this file is "), detail
        assert "delete documents" in detail, detail
    assert len(api.get(f"/api/chat/sessions/{session_id}/files", headers=alice.headers).json()["files"]) == 1


def test_uploads_at_once_cannot_all_take_the_last_room(api, alice, monkeypatch):
    """Each upload counted the documents before any of them was stored, so all passed the check."""
    monkeypatch.setattr(runtime.current().settings, "max_documents_per_user", 1)
    start = threading.Barrier(6)

    def send(i: int) -> int:
        start.wait()
        return upload_document(api, alice, f"notes{i}.txt", f"Notes number {i}.".encode()).status_code

    with ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(send, range(6))) == [200] + [409] * 5
    assert len(api.get("/documents", headers=alice.headers).json()["documents"]) == 1


def test_a_session_file_is_deleted_on_its_own_to_make_room(api, alice, make_user, monkeypatch, fake_upstream):
    """A session file counts against the limits, but only the whole session could free its room:
    DELETE /documents/{id} was 404 for it and the file's document id was shown nowhere."""
    monkeypatch.setattr(runtime.current().settings, "max_documents_per_user", 1)
    session_id = new_session(api, alice)
    file = upload_file(api, alice, session_id, text_pdf(["The treasure is buried under the oak."])).json()["file"]
    assert upload_document(api, alice, "more.txt", b"More notes.").status_code == 409
    assert api.delete(f"/documents/{file['document_id']}", headers=make_user("eve").headers).status_code == 404

    deleted = api.delete(f"/documents/{file['document_id']}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json() == {"message": "Document deleted successfully"}
    assert api.get(f"/api/chat/sessions/{session_id}/files", headers=alice.headers).json()["files"] == []
    assert api.delete(f"/documents/{file['document_id']}", headers=alice.headers).status_code == 404
    assert upload_document(api, alice, "more.txt", b"More notes.").status_code == 200

    question = {"model": "gpt-4", "session_id": session_id, "messages": [{"role": "user", "content": "Where is it?"}]}
    with connect_sse(api, "POST", "/v1/chat/stream", headers=alice.headers, json=question) as sse:  # goes on without it
        assert sse.response.status_code == 200
        list(sse.iter_sse())
    assert not [m for m in fake_upstream.completions[-1]["body"]["messages"] if "buried under the oak" in m["content"]]


def test_only_the_uploader_deletes_a_session_file(api, alice, make_user, share_session):
    """The file takes room in its uploader's limits, not the session owner's."""
    writer = make_user("writer")
    session_id = share_session(alice, writer, can_upload_files=True)
    file = upload_file(api, writer, session_id, text_pdf(["Shared notes."])).json()["file"]
    assert api.delete(f"/documents/{file['document_id']}", headers=alice.headers).status_code == 404
    assert api.delete(f"/documents/{file['document_id']}", headers=writer.headers).status_code == 200
