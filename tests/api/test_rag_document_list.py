"""GET /documents (004, Parley's addition): the user's library a page at a time, newest first."""
from __future__ import annotations

import sqlalchemy.event
from sqlalchemy import select, update

from models import Document
from tests.api.rag_helpers import upload_ready
from tests.api.test_session_files import new_session, upload as upload_file
from tests.pdfs import text_pdf
from workers import runtime


def listed(api, account, **params) -> dict:
    response = api.get("/documents", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_library_is_paged_with_the_total_of_all_documents(api, alice):
    """Every document came in one answer, and `total_count` was only that answer's length."""
    ids = [upload_ready(api, alice, f"doc{i}.txt", f"document number {i}".encode())["id"] for i in range(3)]
    newest_first = ids[::-1]
    first = listed(api, alice, limit=2)
    assert [d["id"] for d in first["documents"]] == newest_first[:2] and first["total_count"] == 3
    rest = listed(api, alice, limit=2, offset=2)
    assert [d["id"] for d in rest["documents"]] == newest_first[2:] and rest["total_count"] == 3
    past_the_end = listed(api, alice, offset=3)
    assert past_the_end == {"documents": [], "total_count": 3}
    everything = listed(api, alice)  # no parameters: the first page of 100, as before
    assert [d["id"] for d in everything["documents"]] == newest_first and everything["total_count"] == 3


def test_a_session_file_is_not_in_the_library_nor_its_total(api, alice):
    upload_ready(api, alice, "mine.txt", b"a library document")
    assert upload_file(api, alice, new_session(api, alice), text_pdf(["A session file."])).status_code == 200
    assert listed(api, alice)["total_count"] == 1


def test_documents_stored_in_the_same_instant_are_paged_by_id(api, alice):
    """Pages must neither repeat nor skip a document that shares its creation time with another."""
    ids = [upload_ready(api, alice, f"same{i}.txt", f"same instant {i}".encode())["id"] for i in range(4)]
    with runtime.session() as db:
        db.execute(update(Document).where(Document.uuid.in_(ids)).values(
            created_at=db.scalar(select(Document.created_at).where(Document.uuid == ids[0]))))
        db.commit()
    pages = [d["id"] for offset in range(4) for d in listed(api, alice, limit=1, offset=offset)["documents"]]
    assert pages == ids[::-1]


def test_the_page_is_read_with_limit_and_offset_and_counted_by_the_database(api, alice):
    """The whole library was read to answer any page: one row per document, however many."""
    for i in range(3):
        upload_ready(api, alice, f"row{i}.txt", f"row {i}".encode())
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if "FROM documents" in statement:
            statements.append(statement)

    sqlalchemy.event.listen(runtime.current().engine, "before_cursor_execute", record)
    try:
        assert len(listed(api, alice, limit=1, offset=1)["documents"]) == 1
    finally:
        sqlalchemy.event.remove(runtime.current().engine, "before_cursor_execute", record)
    assert any("count(" in s.lower() for s in statements), statements
    assert any("LIMIT" in s and "OFFSET" in s for s in statements), statements


def test_bad_limits_and_offsets_are_400_naming_the_parameter(api, alice):
    """As GET /chat/sessions answers: the query strings of 004 are 400 with the validation list."""
    for params, name in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
                         ({"offset": -1}, "offset"), ({"offset": 2147483648}, "offset")):
        response = api.get("/documents", params=params, headers=alice.headers)
        assert response.status_code == 400, (params, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", name] and error["msg"] and error["type"], error
    assert listed(api, alice, limit=1000, offset=2147483647) == {"documents": [], "total_count": 0}
