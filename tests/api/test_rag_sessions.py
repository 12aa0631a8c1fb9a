"""/chat/sessions, /documents/session/{id} and /health of the RAG API (004)."""
from __future__ import annotations

from httpx_sse import connect_sse
from redis import Redis

from models.base import make_engine
from tests.conftest import wait_for
from tests.api.rag_helpers import events, send, upload_ready
from tests.api.test_sessions import stream
from tests.pdfs import text_pdf
from tests.test_metrics_web_process import free_port
from web.api.rag.relay import GENERATING
from workers import leases, runtime


def rag_session(api, account, fake_upstream):
    upload_ready(api, account, "guide.pdf", text_pdf(["Tea grows in Assam.", "Coffee grows in Brazil."]))
    fake_upstream.configure(reply="Brazil [1].")
    response, _ = send(api, account, "Where does coffee grow?")
    return response.headers["X-Session-Id"]


def test_sessions_list_and_detail(api, alice, fake_upstream):
    session_id = rag_session(api, alice, fake_upstream)
    listed = api.get("/chat/sessions", headers=alice.headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["total_count"] == 1
    [session] = body["sessions"]
    assert set(session) == {"id", "user_id", "system_prompt", "created_at", "updated_at", "title", "memory_key",
                            "last_context", "metadata", "relevant_documents"}
    assert session["id"] == session_id and session["user_id"] == alice["id"]
    assert session["title"] == "Where does coffee grow?" and session["metadata"]["rag_enabled"] is True
    # 004 has no model of its own: the one its replies use, as 001 shows it.
    assert session["metadata"]["ai_model"] == runtime.current().settings.default_ai_model
    assert session["relevant_documents"] == [{"document_id": session["relevant_documents"][0]["document_id"],
                                              "filename": "guide.pdf", "chunk_index": 1, "page_number": 2,
                                              "document_deleted": False}]
    context = session["last_context"]
    assert context["query"] == "Where does coffee grow?" and len(context["context_ids"]) == 1
    assert context["search"]["type"] == "SIMILARITY" and context["search"]["mode"] == "vector"
    detail = api.get(f"/chat/sessions/{session_id}", headers=alice.headers).json()
    assert detail["session"] == session
    user, reply = detail["messages"]
    assert user["role"] == "user" and user["content"] == "Where does coffee grow?" and user["sources"] is None
    assert user["user_id"] == alice["id"] and user["session_id"] == session_id
    assert reply["role"] == "assistant" and reply["content"] == "Brazil [1]." and reply["user_id"] == alice["id"]
    assert reply["sources"][0]["filename"] == "guide.pdf" and reply["context_ids"] == context["context_ids"]
    assert 0.7 <= reply["relevance_score"] <= 1
    assert reply["cited_documents"] == session["relevant_documents"]
    assert reply["metadata"]["status"] == "DELIVERED" and "requested_by" not in reply["metadata"]


def test_session_is_a_chat_on_every_surface(api, alice, fake_upstream):
    session_id = rag_session(api, alice, fake_upstream)
    assert session_id in [c["id"] for c in api.get("/api/v1/chat/chats", headers=alice.headers).json()]
    chat = api.post("/api/v1/chat/chats", json={"title": "made elsewhere"}, headers=alice.headers).json()
    assert chat["id"] in [s["id"] for s in api.get("/chat/sessions", headers=alice.headers).json()["sessions"]]


def test_sessions_show_chats_made_elsewhere_in_the_documented_shape(api, alice):
    assert api.post("/api/v1/chats", json={"chat_metadata": {"memory_key": 7, "topic": "x"}},
                    headers=alice.headers).status_code == 200
    keyed = api.post("/api/v1/chats", json={"title": "Keyed", "chat_metadata": {"memory_key": "mk-1"}},
                     headers=alice.headers).json()
    note = {"error_code": 5, "status": "odd", "note": 1}
    assert api.post(f"/api/v1/chats/{keyed['id']}/messages", json={"content": "hi", "message_metadata": note},
                    headers=alice.headers).status_code == 200
    sessions = {s["title"]: s for s in api.get("/chat/sessions", headers=alice.headers).json()["sessions"]}
    assert sessions[None]["memory_key"] is None and sessions[None]["metadata"]["memory_key"] == 7
    assert sessions[None]["metadata"]["topic"] == "x" and sessions[None]["last_context"] is None
    assert sessions["Keyed"]["memory_key"] == "mk-1" and "memory_key" not in sessions["Keyed"]["metadata"]
    [message] = api.get(f"/chat/sessions/{sessions['Keyed']['id']}", headers=alice.headers).json()["messages"]
    # A client's own keys named as those this view sets from the message itself are not shown.
    assert message["metadata"] == {"note": 1, "status": "SENT", "model": None}


def test_cited_documents_read_markers_listed_in_one_bracket(api, alice, fake_upstream):
    """Models often cite several excerpts in one bracket: [1, 3] cites the first and third."""
    for name, fact in (("tea.txt", "Tea grows in Assam."), ("coffee.txt", "Coffee grows in Brazil."),
                       ("cocoa.txt", "Cocoa grows in Ghana.")):
        upload_ready(api, alice, name, fact.encode())
    fake_upstream.configure(reply="Assam and Ghana [1, 3]; Brazil too [2].")
    response, _ = send(api, alice, "Where does it grow?", search_options={"k": 3, "score_threshold": 0})
    detail = api.get(f"/chat/sessions/{response.headers['X-Session-Id']}", headers=alice.headers).json()
    reply = detail["messages"][-1]
    assert len(reply["sources"]) == 3
    assert [c["document_id"] for c in reply["cited_documents"]] == [s["document_id"] for s in reply["sources"]]
    fake_upstream.configure(reply="Assam and Ghana [1,3].")
    response, _ = send(api, alice, "Where does it grow?", session_id=response.headers["X-Session-Id"],
                       search_options={"k": 3, "score_threshold": 0})
    reply = api.get(f"/chat/sessions/{response.headers['X-Session-Id']}", headers=alice.headers).json()["messages"][-1]
    assert [c["document_id"] for c in reply["cited_documents"]] == [reply["sources"][0]["document_id"],
                                                                    reply["sources"][2]["document_id"]]


def test_every_message_a_user_wrote_names_them_whatever_its_role(api, alice, fake_upstream):
    """001 takes earlier system and assistant messages from the session's owner: their author too."""
    fake_upstream.configure(tokens=1)
    stream(api, alice, {"model": "gpt-4", "messages": [{"role": "system", "content": "Be brief"},
                                                       {"role": "assistant", "content": "Hello"},
                                                       {"role": "user", "content": "Authored"}]})
    [session] = [s for s in api.get("/chat/sessions", headers=alice.headers).json()["sessions"]
                 if s["title"] == "Authored"]
    messages = api.get(f"/chat/sessions/{session['id']}", headers=alice.headers).json()["messages"]
    assert [(m["role"], m["user_id"]) for m in messages] == [
        ("system", alice["id"]), ("assistant", alice["id"]), ("user", alice["id"]), ("assistant", alice["id"])]


def test_session_documents(api, alice, make_user, fake_upstream):
    session_id = rag_session(api, alice, fake_upstream)
    found = api.get(f"/documents/session/{session_id}", headers=alice.headers)
    assert found.status_code == 200
    body = found.json()
    assert body["total_count"] == 1
    assert body["documents"][0]["document_name"] == "guide.pdf" and body["documents"][0]["page_number"] == 2
    eve = make_user("eve")
    assert api.get(f"/documents/session/{session_id}", headers=eve.headers).status_code == 404


def test_citations_of_a_deleted_document_say_it_is_deleted(api, alice, fake_upstream):
    session_id = rag_session(api, alice, fake_upstream)

    def shown() -> list[dict]:
        """Every citation of the session: listed, in its detail, its messages and its documents."""
        [session] = api.get("/chat/sessions", headers=alice.headers).json()["sessions"]
        detail = api.get(f"/chat/sessions/{session_id}", headers=alice.headers).json()
        reply = detail["messages"][-1]
        documents = api.get(f"/documents/session/{session_id}", headers=alice.headers).json()["documents"]
        return [*session["relevant_documents"], *detail["session"]["relevant_documents"], *reply["sources"],
                *reply["cited_documents"], *documents]

    before = shown()
    assert len(before) == 5 and {c["document_deleted"] for c in before} == {False}
    [doc_id] = {c["document_id"] for c in before}
    assert api.delete(f"/documents/{doc_id}", headers=alice.headers).status_code == 200
    assert api.get(f"/documents/{doc_id}/chunks/1", headers=alice.headers).status_code == 404
    after = shown()
    assert len(after) == 5 and {c["document_deleted"] for c in after} == {True}
    assert {c.get("filename") or c.get("document_name") for c in after} == {"guide.pdf"}


def test_delete_session(api, alice, make_user, fake_upstream):
    session_id = rag_session(api, alice, fake_upstream)
    eve = make_user("eve")
    assert api.get(f"/chat/sessions/{session_id}", headers=eve.headers).status_code == 404
    assert api.delete(f"/chat/sessions/{session_id}", headers=eve.headers).status_code == 404
    deleted = api.delete(f"/chat/sessions/{session_id}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json() == {"message": "Chat session deleted successfully"}
    assert api.get(f"/chat/sessions/{session_id}", headers=alice.headers).status_code == 404
    assert api.get("/chat/sessions", headers=alice.headers).json()["total_count"] == 0


def test_an_archived_session_is_read_and_deleted_but_takes_no_message(api, alice, fake_upstream):
    """Archived on 002 or 003, a session leaves the list (as archived conversations leave 002's) but
    is still read by its id, as 002 and 003 read it; a message to it is 400 saying why, not 404."""
    session_id = rag_session(api, alice, fake_upstream)
    [listed] = api.get("/chat/sessions", headers=alice.headers).json()["sessions"]
    detail = api.get(f"/chat/sessions/{session_id}", headers=alice.headers).json()
    cited = api.get(f"/documents/session/{session_id}", headers=alice.headers).json()
    chat_id = api.get("/v1/chat/history", headers=alice.headers).json()["sessions"][0]["id"]
    assert api.patch(f"/api/v1/chats/{chat_id}/status", json={"status": "ARCHIVED"},
                     headers=alice.headers).status_code == 200
    assert api.get("/chat/sessions", headers=alice.headers).json() == {"sessions": [], "total_count": 0}
    archived = api.get(f"/chat/sessions/{session_id}", headers=alice.headers)
    assert archived.status_code == 200 and archived.json()["messages"] == detail["messages"]
    assert archived.json()["session"] == {**listed, "updated_at": archived.json()["session"]["updated_at"]}
    assert api.get(f"/documents/session/{session_id}", headers=alice.headers).json() == cited
    refused, _ = send(api, alice, "Still there?", session_id=session_id)
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Chat session is archived: unarchive it to continue it"}
    assert len(api.get(f"/chat/sessions/{session_id}", headers=alice.headers).json()["messages"]) == 2
    assert api.delete(f"/chat/sessions/{session_id}", headers=alice.headers).status_code == 200
    assert api.get(f"/chat/sessions/{session_id}", headers=alice.headers).status_code == 404


def test_deleting_a_session_while_its_reply_streams_ends_the_stream(api, alice, fake_upstream, monkeypatch):
    # The deletion's event ends the stream: not the next keep-alive (after the client's 10 s read timeout).
    monkeypatch.setattr(runtime.current().settings, "sse_keepalive_s", 60)
    fake_upstream.configure(tokens=1, first_delay_ms=1500)
    received = []
    with connect_sse(api, "POST", "/chat/send", json={"message": "gone soon"}, headers=alice.headers) as sse:
        for _, payload in events(api, "POST", sse):
            received.append(payload)
            if payload.get("status") == GENERATING:
                deleted = api.delete(f"/chat/sessions/{sse.response.headers['X-Session-Id']}", headers=alice.headers)
                assert deleted.status_code == 200
    assert received[-1] == {"type": "done", "content": "", "citations": [], "status": "DELETED"}
    # The delete asks the reply to stop; its worker finds no reply to store and gives the streaming slot back.
    slots = leases.replies_key(alice["user_id"])
    wait_for(lambda: runtime.current().redis.zcard(slots) == 0, timeout=10)


def test_sessions_most_recently_active_first_and_paging(api, alice, fake_upstream):
    fake_upstream.configure(tokens=1)
    first, second = (send(api, alice, text)[0].headers["X-Session-Id"] for text in ("first", "second"))
    send(api, alice, "again", session_id=first)  # the first is now the latest active
    listed = api.get("/chat/sessions", headers=alice.headers).json()
    assert [s["id"] for s in listed["sessions"]] == [first, second] and listed["total_count"] == 2
    page = api.get("/chat/sessions", params={"limit": 1, "offset": 1}, headers=alice.headers).json()
    assert [s["id"] for s in page["sessions"]] == [second] and page["total_count"] == 2


def test_sessions_paging_and_auth(api, alice):
    assert api.get("/chat/sessions").status_code == 401
    assert api.get("/chat/sessions?limit=0", headers=alice.headers).status_code == 400
    assert api.get("/chat/sessions/unknown", headers=alice.headers).status_code == 404


def test_health(api):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["version"]
    assert body["database"]["status"] == body["redis"]["status"] == "healthy"
    assert body["workers"]["queues"]["replies"] >= 1 and body["upstream"]["status"] == "healthy"
    assert body["embeddings"] == {"provider": "openai", "model": "text-embedding-3-small",
                                  "search": "vector and full-text"}


def test_health_is_503_when_the_database_or_redis_is_down(api, monkeypatch):
    """The app's database, then its Redis, is a server at a closed port: each check really fails."""
    rt = runtime.current()
    monkeypatch.setattr(rt, "engine", make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/parley"))
    response = api.get("/health")
    assert response.status_code == 503 and response.json()["status"] == "unhealthy"
    assert response.json()["database"] == {"status": "unhealthy", "error": "OperationalError"}
    monkeypatch.undo()
    monkeypatch.setattr(rt, "redis", Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    response = api.get("/health")
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unhealthy" and body["database"]["status"] == "healthy"
    assert body["redis"] == {"status": "unhealthy", "error": "ConnectionError"}
    assert body["workers"] == {"status": "unknown"}
