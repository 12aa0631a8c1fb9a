"""The RAG API's documents (004): uploads of PDFs, text and Markdown, chunks, datasets, isolation."""
from __future__ import annotations

import time

import sqlalchemy.event
from sqlalchemy import func, select

from models import Dataset, Document, DocumentChunk
from tests.api.rag_helpers import of_type, send, upload, upload_ready
from tests.conftest import enqueue_refused, sent_while_deleting, wait_for
from tests.pdfs import encrypted_pdf, text_pdf, truncated_pdf
from workers import runtime


def test_upload_pdf_then_read_document_and_chunks(api, alice):
    pages = ["The warranty covers parts for two years.", "Returns are accepted within thirty days."]
    doc = upload_ready(api, alice, "policy.pdf", text_pdf(pages))
    assert doc["filename"] == "policy.pdf" and "thirty days" in doc["content"]
    meta = doc["metadata"]
    assert meta["filename"] == "policy.pdf" and meta["file_type"] == "pdf" and meta["page_count"] == 2
    assert meta["additional_metadata"]["chunk_count"] == 2 and doc["error"] is None
    chunk = api.get(f"/documents/{doc['id']}/chunks/1", headers=alice.headers)
    assert chunk.status_code == 200
    body = chunk.json()
    assert body["document_id"] == doc["id"] and body["chunk_index"] == 1 and "thirty days" in body["content"]
    assert body["metadata"]["page_number"] == 2 and body["metadata"]["total_chunks"] == 2
    assert body["metadata"]["filename"] == "policy.pdf" and body["metadata"]["document_id"] == doc["id"]
    assert api.get(f"/documents/{doc['id']}/chunks/2", headers=alice.headers).status_code == 404
    upper = api.get(f"/documents/{doc['id'].upper()}/chunks/1", headers=alice.headers)  # the same UUID
    assert upper.status_code == 200 and upper.json()["document_id"] == doc["id"]


def test_upload_text_and_markdown(api, alice):
    doc = upload_ready(api, alice, "notes.txt", "Plain notes about llamas.\nSecond line.".encode())
    assert doc["metadata"]["file_type"] == "text" and doc["metadata"]["page_count"] is None
    assert doc["content"].startswith("Plain notes")
    md = upload_ready(api, alice, "README.md", "# Title\n\nSome *markdown* text, ünïcode.".encode())
    assert md["metadata"]["file_type"] == "markdown"
    chunk = api.get(f"/documents/{md['id']}/chunks/0", headers=alice.headers).json()
    assert chunk["metadata"]["page_number"] is None and "ünïcode" in chunk["content"]


def test_a_long_file_name_is_cut_keeping_its_extension(api, alice):
    """Names are kept to 255 characters; cutting the end took the extension, so a client showed
    "nnn…n" with no ".md" (and saved it without a type)."""
    doc = upload_ready(api, alice, "n" * 300 + ".md", b"# Notes")
    assert doc["filename"] == "n" * 252 + ".md" and doc["metadata"]["file_type"] == "markdown"


def test_a_file_name_keeps_only_the_last_part_of_a_path(api, alice):
    """A client's directories are not part of the name (RFC 7578 4.2): they showed in every listing and
    in the prompts that cite the document."""
    for sent, kept in (("../../etc/notes.md", "notes.md"), ("C:\\Users\\bob\\report.txt", "report.txt"),
                       ("folder/", "document")):
        assert upload_ready(api, alice, sent, f"# Notes from {sent}".encode())["filename"] == kept, sent


def test_long_text_is_chunked_with_overlap(api, alice, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "rag_chunk_tokens", 50)
    monkeypatch.setattr(runtime.current().settings, "rag_chunk_overlap", 10)
    words = " ".join(f"word{i}" for i in range(200))
    doc = upload_ready(api, alice, "long.txt", words.encode())
    count = doc["metadata"]["additional_metadata"]["chunk_count"]
    assert count == 5  # 200 words, 50 a chunk, stepping 40
    first = api.get(f"/documents/{doc['id']}/chunks/0", headers=alice.headers).json()["content"].split()
    second = api.get(f"/documents/{doc['id']}/chunks/1", headers=alice.headers).json()["content"].split()
    assert len(first) == 50 and first[-10:] == second[:10]


def test_long_pdf_is_indexed_in_slices(api, alice, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "rag_pages_per_job", 3)
    doc = upload_ready(api, alice, "book.pdf", text_pdf([f"Page {i} talks about topic{i}." for i in range(8)]))
    assert doc["metadata"]["additional_metadata"]["chunk_count"] == 8
    last = api.get(f"/documents/{doc['id']}/chunks/7", headers=alice.headers).json()
    assert last["metadata"]["page_number"] == 8 and "topic7" in last["content"]


def test_upload_errors(api, alice):
    assert upload(api, alice, "x.bin", bytes(range(256)) * 4).status_code == 400
    assert upload(api, alice, "empty.txt", b"").status_code == 400
    blank = upload(api, alice, "blank.txt", bytes(range(1, 32)) * 8 + b" \n\t")
    assert blank.status_code == 400 and "no readable text" in blank.json()["detail"]
    big = upload(api, alice, "big.txt", b"a" * (10 * 1024 * 1024 + 1))
    assert big.status_code == 413 and "10 MB" in big.json()["detail"]
    missing = api.post("/documents/upload", data={"x": "1"}, headers=alice.headers)
    assert missing.status_code == 400
    assert upload(api, alice, "a.txt", b"hi", dataset_id="not-a-uuid").status_code == 422
    assert upload(api, alice, "a.txt", b"hi", dataset_id="00000000-0000-4000-8000-000000000000").status_code == 404
    assert api.post("/documents/upload", files={"file": ("a.txt", b"hi")}).status_code == 401


def test_damaged_and_encrypted_pdfs_fail_with_a_reason(api, alice):
    for name, data in (("cut.pdf", truncated_pdf(["x"] * 3)), ("locked.pdf", encrypted_pdf(["secret"]))):
        doc_id = upload(api, alice, name, data).json()["id"]
        doc = wait_for(lambda: (d := api.get(f"/documents/{doc_id}", headers=alice.headers).json())["status"]
                       != "processing" and d)
        assert doc["status"] == "failed" and doc["error"], doc


def test_an_embedding_failure_says_what_went_wrong(api, alice, fake_upstream):
    """The upstream refusing our key left only "The embedding service was unavailable"."""
    fake_upstream.configure(api_key="another-key")
    doc = upload_ready(api, alice, "notes.txt", b"Bananas are yellow.")
    note = doc["metadata"]["additional_metadata"]["indexing_note"]
    assert note.startswith("The embedding service was unavailable (AuthenticationError: "), note
    assert "401" in note and "Incorrect API key provided." in note and note.endswith("): keyword search only")


def test_an_embedding_failure_in_one_slice_of_a_long_pdf_is_noted(api, alice, fake_upstream, monkeypatch):
    """Only the last slice's outcome was kept: when the embedding service failed for the first pages
    and came back, the document said nothing, though those pages are found by keyword search only."""
    monkeypatch.setattr(runtime.current().settings, "rag_pages_per_job", 1)
    fake_upstream.configure(api_key="another-key")  # refused for the first slice only

    def recovered(mapper, connection, chunk):
        fake_upstream.configure(api_key=None)

    sqlalchemy.event.listen(DocumentChunk, "after_insert", recovered)
    try:
        doc = upload_ready(api, alice, "book.pdf", text_pdf(["Tea grows in Assam.", "Coffee grows in Brazil."]))
    finally:
        sqlalchemy.event.remove(DocumentChunk, "after_insert", recovered)
    extra = doc["metadata"]["additional_metadata"]
    with runtime.session() as db:
        models = db.execute(select(DocumentChunk.page_number, DocumentChunk.embedding_model)
                            .join(Document).where(Document.uuid == doc["id"]).order_by(DocumentChunk.page_number)).all()
    assert [tuple(row) for row in models] == [(1, None), (2, "text-embedding-3-small")]
    assert extra["embedding_model"] == "text-embedding-3-small"
    assert extra["indexing_note"].startswith("The embedding service was unavailable (AuthenticationError: ")


def test_a_long_pdf_failing_in_a_later_slice_leaves_no_chunks_to_cite(api, alice, fake_upstream, monkeypatch):
    """The pages indexed before a slice failed stayed searchable: /chat/send cited a document that
    GET /documents/{id} called failed."""
    monkeypatch.setattr(runtime.current().settings, "rag_pages_per_job", 1)

    def unreadable_from_now_on(mapper, connection, chunk):  # the next slice's parser fails
        connection.execute(Document.__table__.update().where(Document.id == chunk.document_id)
                           .values(data=b"%PDF-1.4 cut short"))

    sqlalchemy.event.listen(DocumentChunk, "after_insert", unreadable_from_now_on)
    try:
        response = upload(api, alice, "book.pdf", text_pdf(["Tea grows in Assam.", "Coffee grows in Brazil."]))
        doc = wait_for(lambda: (d := api.get(f"/documents/{response.json()['id']}", headers=alice.headers).json())
                       ["status"] != "processing" and d)
    finally:
        sqlalchemy.event.remove(DocumentChunk, "after_insert", unreadable_from_now_on)
    assert doc["status"] == "failed" and doc["error"].startswith("The document could not be indexed"), doc
    assert doc["metadata"]["additional_metadata"]["chunk_count"] == 0
    assert api.get(f"/documents/{doc['id']}/chunks/0", headers=alice.headers).status_code == 404
    fake_upstream.configure(reply="Assam [1].")
    _, received = send(api, alice, "Where does tea grow?", search_options={"score_threshold": 0})
    assert received[-1][1]["citations"] == []


def test_a_document_still_processing_is_not_searched_until_indexed(api, alice, fake_upstream, monkeypatch):
    """A long PDF's first slices were searched and cited while GET /documents/{id} still said
    `processing`: an answer from the first pages of a document read as if from all of it."""
    monkeypatch.setattr(runtime.current().settings, "rag_pages_per_job", 1)
    fake_upstream.configure(hold_embeddings_with="Coffee", tokens=1)  # the second slice waits
    doc_id = upload(api, alice, "book.pdf", text_pdf(["Tea grows in Assam.", "Coffee grows in Brazil."])).json()["id"]
    doc = wait_for(lambda: (d := api.get(f"/documents/{doc_id}", headers=alice.headers).json())
                   ["metadata"]["additional_metadata"]["chunk_count"] and d)
    assert doc["status"] == "processing"
    _, received = send(api, alice, "Where does tea grow in Assam?", search_options={"score_threshold": 0})
    assert received[-1][1]["citations"] == []
    statuses = [p["status"] for p in of_type(received, "status")]
    assert "1 document is still being indexed and was not searched" in statuses
    fake_upstream.configure(hold_embeddings_with=None)
    assert wait_for(lambda: api.get(f"/documents/{doc_id}", headers=alice.headers).json()["status"] == "ready")
    _, received = send(api, alice, "Where does tea grow in Assam?")
    assert [(c["filename"], c["page_number"]) for c in received[-1][1]["citations"]][:1] == [("book.pdf", 1)]
    assert not [p for p in of_type(received, "status") if "indexed" in p["status"]]


def test_documents_are_private(api, alice, make_user):
    doc = upload_ready(api, alice, "mine.txt", b"alice's secret recipe")
    newer = upload_ready(api, alice, "newer.txt", b"alice's shopping list")
    listed = api.get("/documents", headers=alice.headers).json()
    assert [d["id"] for d in listed["documents"]] == [newer["id"], doc["id"]] and listed["total_count"] == 2
    eve = make_user("eve")
    for path in (f"/documents/{doc['id']}", f"/documents/{doc['id']}/chunks/0"):
        assert api.get(path, headers=eve.headers).status_code == 404
    assert api.delete(f"/documents/{doc['id']}", headers=eve.headers).status_code == 404
    assert all(d["id"] != doc["id"] for d in api.get("/documents", headers=eve.headers).json()["documents"])
    assert api.get("/documents/nope", headers=alice.headers).status_code == 404


def test_the_library_is_listed_in_a_constant_number_of_queries(api, alice):
    """GET /documents counted each document's chunks and read its datasets one document at a time."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if "document" in statement or "dataset" in statement:
            statements.append(statement)

    def listed() -> tuple[dict, int]:
        statements.clear()
        sqlalchemy.event.listen(runtime.current().engine, "before_cursor_execute", record)
        try:
            return api.get("/documents", headers=alice.headers).json(), len(statements)
        finally:
            sqlalchemy.event.remove(runtime.current().engine, "before_cursor_execute", record)

    upload_ready(api, alice, "one.txt", b"first document")
    _, with_one = listed()
    dataset = api.post("/datasets", json={"name": "Manuals"}, headers=alice.headers).json()
    upload_ready(api, alice, "two.pdf", text_pdf(["page one", "page two"]), dataset_id=dataset["id"])
    upload_ready(api, alice, "three.txt", b"third document")
    library, with_three = listed()
    assert with_three == with_one <= 4, statements  # the count, the page, its chunk counts and datasets
    assert [(d["filename"], d["metadata"]["additional_metadata"]["chunk_count"],
             d["metadata"]["additional_metadata"]["dataset_ids"]) for d in library["documents"]] == [
        ("three.txt", 1, []), ("two.pdf", 2, [dataset["id"]]), ("one.txt", 1, [])]


def test_delete_removes_chunks(api, alice):
    doc = upload_ready(api, alice, "gone.txt", b"temporary words")
    deleted = api.delete(f"/documents/{doc['id']}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json() == {"message": "Document deleted successfully"}
    assert api.get(f"/documents/{doc['id']}", headers=alice.headers).status_code == 404
    with runtime.session() as db:
        assert db.scalar(select(func.count()).select_from(DocumentChunk).where(
            DocumentChunk.content == "temporary words")) == 0


def test_datasets(api, alice, make_user):
    one = upload_ready(api, alice, "one.txt", b"first document")
    created = api.post("/datasets", json={"name": "Manuals", "description": "d", "document_ids": [one["id"]]},
                       headers=alice.headers)
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["name"] == "Manuals" and dataset["document_ids"] == [one["id"]]
    assert dataset["updated_at"] == dataset["created_at"]  # not changed yet
    two = upload_ready(api, alice, "two.txt", b"second document", dataset_id=dataset["id"])
    assert two["metadata"]["additional_metadata"]["dataset_ids"] == [dataset["id"]]
    listed = api.get("/datasets", headers=alice.headers).json()
    assert listed["total_count"] == 1 and listed["datasets"][0]["document_ids"] == [one["id"], two["id"]]
    joined = api.get(f"/datasets/{dataset['id']}", headers=alice.headers).json()
    assert joined["document_count"] == 2 and joined["updated_at"] > dataset["updated_at"]  # a document joined
    assert api.delete(f"/documents/{one['id']}", headers=alice.headers).status_code == 200
    left = api.get(f"/datasets/{dataset['id']}", headers=alice.headers).json()
    assert left["document_ids"] == [two["id"]] and left["updated_at"] > joined["updated_at"]  # and one left
    assert api.post("/datasets", json={"name": "Manuals"}, headers=alice.headers).status_code == 409
    assert api.post("/datasets", json={"name": ""}, headers=alice.headers).status_code == 422
    eve = make_user("eve")
    assert api.get(f"/datasets/{dataset['id']}", headers=eve.headers).status_code == 404
    assert api.post("/datasets", json={"name": "Stolen", "document_ids": [two["id"]]},
                    headers=eve.headers).status_code == 404
    assert api.get("/datasets", headers=eve.headers).json() == {"datasets": [], "total_count": 0}


def test_a_dataset_of_a_document_deleted_meanwhile_is_404(api, alice):
    """The dataset found its document while the document's deletion was committing: 404 naming
    it, as for a document already deleted, not the dataset row's foreign key error (a 500)."""
    doc = upload_ready(api, alice, "going.txt", b"soon deleted")
    with runtime.session() as db:
        doc_id = db.scalar(select(Document.id).where(Document.uuid == doc["id"]))
    answer = sent_while_deleting(Document.__table__, doc_id, lambda: api.post(
        "/datasets", json={"name": "Too late", "document_ids": [doc["id"]]}, headers=alice.headers))
    assert answer.status_code == 404 and answer.json() == {"detail": f"Document not found: {doc['id']}"}
    assert api.get("/datasets", headers=alice.headers).json()["total_count"] == 0


def test_a_delete_racing_another_delete_is_404(api, alice):
    """Two DELETEs at once: the one that finds the document gone is 404, as after it (both were 200)."""
    doc = upload_ready(api, alice, "twice.txt", b"deleted twice")
    with runtime.session() as db:
        doc_id = db.scalar(select(Document.id).where(Document.uuid == doc["id"]))
    raced = sent_while_deleting(Document.__table__, doc_id, lambda: api.delete(
        f"/documents/{doc['id']}", headers=alice.headers))
    assert raced.status_code == 404 and raced.json() == {"detail": "Document not found"}


def test_upload_when_the_queue_is_down_is_503(api, alice):
    with enqueue_refused():
        response = upload(api, alice, "later.txt", b"try again")
    assert response.status_code == 503
    [doc] = [d for d in api.get("/documents", headers=alice.headers).json()["documents"]
             if d["filename"] == "later.txt"]
    assert doc["status"] == "failed" and "again" in doc["error"]


def test_a_long_pdf_does_not_hold_up_another_users_upload(api, alice, make_user, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "rag_pages_per_job", 10)
    book = text_pdf([f"Chapter page {i}: " + "long prose about rivers and valleys " * 30 for i in range(300)])
    long_one = upload(api, alice, "book.pdf", book)
    assert long_one.status_code == 200
    bob = make_user("bob")
    started = time.monotonic()
    doc = upload_ready(api, bob, "memo.pdf", text_pdf(["One page memo."]))
    assert doc["status"] == "ready" and time.monotonic() - started < 5
    book_id = long_one.json()["id"]
    final = wait_for(lambda: (d := api.get(f"/documents/{book_id}", headers=alice.headers).json())["status"]
                     != "processing" and d, timeout=60)
    assert final["status"] == "ready" and final["metadata"]["page_count"] == 300


def test_a_document_deleted_while_its_upload_waits_is_404_not_500(api, alice, monkeypatch):
    """The upload answers the document as stored after its wait for indexing; deleted meanwhile by
    its owner (another tab), it is 404, as a later GET would be: the answer read a row that was gone (500)."""
    from web.services import rag_documents

    waited = rag_documents.wait_indexed

    def deleted_while_waiting(job, wait_s):
        waited(job, wait_s)
        with runtime.session() as db:
            document_uuid = db.scalar(select(Document.uuid).where(Document.id == job.args[0]))
        deleted = api.delete(f"/documents/{document_uuid}", headers=alice.headers)
        assert deleted.status_code == 200

    monkeypatch.setattr(rag_documents, "wait_indexed", deleted_while_waiting)
    response = upload(api, alice, "brief.txt", b"here for a moment")
    assert (response.status_code, response.json()) == (404, {"detail": "Document not found"})


def test_an_upload_into_a_dataset_deleted_meanwhile_is_404(api, alice):
    """The upload found the dataset while its deletion was committing: 404, as for a dataset already
    deleted, and nothing stored; not the membership's foreign key error (a 500)."""
    dataset = api.post("/datasets", json={"name": "Short-lived"}, headers=alice.headers).json()
    with runtime.session() as db:
        dataset_id = db.scalar(select(Dataset.id).where(Dataset.uuid == dataset["id"]))
    answer = sent_while_deleting(Dataset.__table__, dataset_id, lambda: upload(
        api, alice, "late.txt", b"for a dataset being deleted", dataset_id=dataset["id"]))
    assert (answer.status_code, answer.json()) == (404, {"detail": "Dataset not found"})
    assert api.get("/documents", headers=alice.headers).json()["total_count"] == 0
