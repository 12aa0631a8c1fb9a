"""An upload of bytes the user already stored in the same place (their library, or that session)
answers the stored document instead of storing, parsing and embedding them again."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from models import Document, DocumentChunk
from tests.api.rag_helpers import upload, upload_ready
from tests.api.test_session_files import new_session, upload as upload_file
from tests.conftest import enqueue_refused
from tests.pdfs import text_pdf
from workers import runtime


def stored_copies(data: bytes) -> int:
    with runtime.session() as db:
        return db.scalar(select(func.count()).select_from(Document).where(Document.file_size == len(data),
                                                                            Document.data == data))


def test_the_same_file_again_answers_the_stored_document(api, alice):
    """Each upload of the same file was stored, parsed, chunked and embedded again, and counted again."""
    data = text_pdf(["The lighthouse keeper logs the weather at dawn."])
    first = upload_ready(api, alice, "logbook.pdf", data)
    again = upload(api, alice, "logbook (1).pdf", data)
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["duplicate"] is True and body["id"] == first["id"] and body["filename"] == "logbook.pdf"
    assert body["status"] == "ready" and "lighthouse keeper" in body["content"]
    assert stored_copies(data) == 1
    with runtime.session() as db:
        assert db.scalar(select(func.count()).select_from(DocumentChunk).join(Document).where(
            Document.uuid == first["id"])) == 1
    assert api.get("/documents", headers=alice.headers).json()["total_count"] == 1
    fresh = upload(api, alice, "other.txt", b"Something else entirely.")
    assert fresh.status_code == 200 and fresh.json()["duplicate"] is False


def test_a_copy_at_the_document_limit_is_answered_not_refused(api, alice, monkeypatch):
    """Nothing is stored for a copy, so the limits do not refuse it."""
    monkeypatch.setattr(runtime.current().settings, "max_documents_per_user", 1)
    kept = upload_ready(api, alice, "only.txt", b"The only document.")
    again = upload(api, alice, "only.txt", b"The only document.")
    assert again.status_code == 200 and again.json()["id"] == kept["id"] and again.json()["duplicate"] is True
    assert upload(api, alice, "new.txt", b"A new document.").status_code == 409


def test_copies_are_per_user_and_per_place(api, alice, make_user):
    """The library and each session are separate places; another user's copy is theirs."""
    data = text_pdf(["Minutes of the harbour committee."])
    library = upload_ready(api, alice, "minutes.pdf", data)
    bob = make_user("bob")
    assert upload_ready(api, bob, "minutes.pdf", data)["id"] != library["id"]
    session_id, other_session = new_session(api, alice), new_session(api, alice)
    first = upload_file(api, alice, session_id, data).json()
    assert first["duplicate"] is False and first["file"]["document_id"] != library["id"]
    again = upload_file(api, alice, session_id, data, name="minutes-again.pdf")
    assert again.status_code == 200, again.text
    assert again.json() == {"file": first["file"], "duplicate": True,
                            "message": "This file was already uploaded to this session; it was not stored again"}
    elsewhere = upload_file(api, alice, other_session, data).json()
    assert elsewhere["duplicate"] is False and elsewhere["file"]["id"] != first["file"]["id"]
    assert stored_copies(data) == 4  # alice's library, bob's, and two sessions
    assert len(api.get(f"/api/chat/sessions/{session_id}/files", headers=alice.headers).json()["files"]) == 1


def test_a_failed_documents_copy_is_stored_anew(api, alice):
    """A document that failed (here: its processing could not be started) is no answer to a new upload."""
    with enqueue_refused():
        assert upload(api, alice, "retry.txt", b"Uploaded while the queue was down.").status_code == 503
    again = upload(api, alice, "retry.txt", b"Uploaded while the queue was down.")
    assert again.status_code == 200 and again.json()["duplicate"] is False and again.json()["status"] != "failed"
    listed = api.get("/documents", headers=alice.headers).json()
    assert sorted(d["status"] for d in listed["documents"]) == ["failed", again.json()["status"]]


def test_a_copy_sent_with_a_dataset_joins_it(api, alice):
    """What the user sent is kept: the stored document joins the dataset named with the copy."""
    doc = upload_ready(api, alice, "manual.txt", b"Press the red button twice.")
    dataset = api.post("/datasets", json={"name": "Manuals"}, headers=alice.headers).json()
    again = upload(api, alice, "manual.txt", b"Press the red button twice.", dataset_id=dataset["id"])
    assert again.status_code == 200 and again.json()["id"] == doc["id"]
    assert again.json()["metadata"]["additional_metadata"]["dataset_ids"] == [dataset["id"]]
    joined = api.get(f"/datasets/{dataset['id']}", headers=alice.headers).json()
    assert joined["document_ids"] == [doc["id"]] and joined["updated_at"] > dataset["updated_at"]
    upload(api, alice, "manual.txt", b"Press the red button twice.", dataset_id=dataset["id"])
    assert api.get(f"/datasets/{dataset['id']}", headers=alice.headers).json() == joined  # nothing changed


def test_identical_uploads_at_once_store_one_document(api, alice):
    data = b"Sent from six tabs at once."
    start = threading.Barrier(6)

    def send(_: int):
        start.wait()
        return upload(api, alice, "tabs.txt", data)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.json()["id"] for a in answers}) == 1
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 5
    assert stored_copies(data) == 1
