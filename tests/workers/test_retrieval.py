"""Search types on the configured database (SQLite+numpy, or PostgreSQL+pgvector), reranking, chunking."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import sqlalchemy.event
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy import text as sql_text

from models import Document, DocumentChunk, User
from tests.api.rag_helpers import upload_ready
from tests.conftest import REAL_SERVICES
from workers import runtime
from workers.retrieval.chunking import chunk_pages, split_page
from workers.retrieval.scoring import fuse, mmr
from workers.retrieval.search import SearchOptions, search
from workers.retrieval.store import Scope, shares_a_pair

DOCS = {
    "paris.txt": "Paris is the capital of France and sits on the river Seine.",
    "paris2.txt": "The capital of France is Paris, a city on the Seine river.",
    "lyon.txt": "Lyon is a French city famous for food, silk and the capital of gastronomy.",
    "zoo.txt": "Our zoo has a zebra, two lions, a penguin colony, otters, seals, flamingos and goats.",
}


@pytest.fixture
def corpus(api, make_user):
    owner = make_user("reader")
    for name, content in DOCS.items():
        upload_ready(api, owner, name, content.encode())
    with runtime.session() as db:
        user_id = db.scalar(select(User.id).where(User.uuid == owner["id"]))
    return Scope(user_id)


def run(scope: Scope, query: str, **options) -> list[dict]:
    with runtime.session() as db:
        return search(db, runtime.current().settings, scope, query, SearchOptions(**options)).hits


def test_similarity_ranks_by_cosine_and_applies_the_threshold(corpus):
    hits = run(corpus, "What is the capital of France?", k=4, score_threshold=0.8)
    assert {h["filename"] for h in hits} == {"paris.txt", "paris2.txt"}
    assert all(0.8 <= h["relevance_score"] <= 1 for h in hits)
    everything = run(corpus, "What is the capital of France?", k=4, score_threshold=0.0)
    assert [h["filename"] for h in everything][2:] == ["lyon.txt", "zoo.txt"]
    scores = [h["relevance_score"] for h in everything]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("provider, query, found", [
    ("auto", "What is the capital of France?", ["paris2.txt", "lyon.txt", "zoo.txt"]),
    ("none", "capital France", ["paris2.txt", "lyon.txt"]),  # keywords only
])
def test_a_document_deleted_during_a_search_is_left_out_of_its_hits(corpus, monkeypatch, provider, query, found):
    """PostgreSQL (and SQLite outside a transaction) reads each statement afresh: a document deleted
    between the query ranking the chunks and the read of those chunks' text must drop out, not fail the
    whole search (the reply then went without any document context)."""
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", provider)
    deleted = []

    def delete_paris(conn, cursor, statement, parameters, context, executemany):
        if deleted or "FROM document_chunks" not in statement or "JOIN" in statement:
            return
        deleted.append(True)
        with runtime.session() as db:
            doc_id = db.scalar(select(Document.id).where(Document.filename == "paris.txt",
                                                         Document.owner_id == corpus.owner_id))
            db.execute(delete(DocumentChunk).where(DocumentChunk.document_id == doc_id))
            db.execute(delete(Document).where(Document.id == doc_id))
            db.commit()

    sqlalchemy.event.listen(Engine, "after_cursor_execute", delete_paris)
    try:
        hits = run(corpus, query, k=4, score_threshold=0.0)
    finally:
        sqlalchemy.event.remove(Engine, "after_cursor_execute", delete_paris)
    assert deleted and [h["filename"] for h in hits] == found


def test_hybrid_keeps_keyword_matches_the_threshold_drops(corpus):
    query = "zebra quantum physics lecture notes"
    assert run(corpus, query, search_type="SIMILARITY", score_threshold=0.7) == []
    hits = run(corpus, query, search_type="HYBRID", score_threshold=0.7)
    assert [h["filename"] for h in hits] == ["zoo.txt"] and 0 < hits[0]["relevance_score"] <= 1


def test_hybrid_fuses_both_rankings(corpus):
    hits = run(corpus, "capital of France Seine", search_type="HYBRID", k=2, score_threshold=0.0)
    assert {h["filename"] for h in hits} == {"paris.txt", "paris2.txt"}
    # The top hit is first (or, when PostgreSQL's full-text ranks the two Paris texts as a
    # tie, second) in each ranking: its fused score is at or next to the maximum of 1.0.
    assert hits[0]["relevance_score"] > 0.98


def test_mmr_trades_relevance_for_diversity(corpus):
    query = "capital of France Paris Seine city"
    similar = run(corpus, query, search_type="SIMILARITY", k=2, score_threshold=0.0)
    assert {h["filename"] for h in similar} == {"paris.txt", "paris2.txt"}
    diverse = run(corpus, query, search_type="MMR", k=2, score_threshold=0.0, fetch_k=10, lambda_mult=0.3)
    assert len(diverse) == 2 and diverse[0]["filename"] in ("paris.txt", "paris2.txt")
    assert diverse[1]["filename"] not in ("paris.txt", "paris2.txt")


def test_local_rerank_blends_semantic_and_keyword_scores(corpus):
    plain = run(corpus, "capital gastronomy", k=1, score_threshold=0.0)
    hits = run(corpus, "capital gastronomy", k=1, score_threshold=0.0, rerank=True, fetch_k=10)
    assert plain[0]["filename"] == hits[0]["filename"] == "lyon.txt"
    assert hits[0]["relevance_score"] == pytest.approx(0.5 * plain[0]["relevance_score"] + 0.5, abs=1e-3)


@pytest.fixture
def rerank_server():
    """A `/v1/rerank` endpoint over real HTTP that puts the zoo first; yields the requests it got."""
    sent: list[dict] = []

    class Rerank(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            sent.append({"path": self.path, "authorization": self.headers.get("Authorization"), **body})
            answer = json.dumps({"results": [{"index": i, "relevance_score": 0.99 if "zebra" in doc else 0.01}
                                             for i, doc in enumerate(body["documents"])]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Rerank)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.sent = sent
    yield server
    server.shutdown()


def test_rerank_endpoint(corpus, monkeypatch, rerank_server):
    settings = runtime.current().settings
    monkeypatch.setattr(settings, "rerank_url", f"http://127.0.0.1:{rerank_server.server_port}/v1/rerank")
    monkeypatch.setattr(settings, "rerank_api_key", "rerank-key")
    hits = run(corpus, "capital of France", k=1, score_threshold=0.0, rerank=True)
    assert hits[0]["filename"] == "zoo.txt" and hits[0]["relevance_score"] == 0.99
    [sent] = rerank_server.sent
    assert sent["path"] == "/v1/rerank" and sent["authorization"] == "Bearer rerank-key"
    assert sent["query"] == "capital of France" and len(sent["documents"]) == 4

    with socket.socket() as closed:  # a port nothing listens on: the endpoint is down
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setattr(settings, "rerank_url", f"http://127.0.0.1:{closed.getsockname()[1]}/v1/rerank")
        with runtime.session() as db:
            result = search(db, settings, corpus, "capital gastronomy",
                            SearchOptions(k=1, score_threshold=0.0, rerank=True))
    assert result.hits[0]["filename"] == "lyon.txt" and "re-scored locally" in result.notes[0]


def test_keyword_only_search(corpus, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", "none")
    with runtime.session() as db:
        result = search(db, runtime.current().settings, corpus, "penguin otters", SearchOptions())
    assert result.mode == "full-text" and [h["filename"] for h in result.hits] == ["zoo.txt"]
    assert result.hits[0]["relevance_score"] == 1.0 and "keywords only" in result.notes[0]


def test_keyword_only_hits_are_ranked_by_their_keyword_coverage(api, make_user, monkeypatch):
    """The shown score is the share of the query's words a chunk holds: the best share comes first, not the
    chunk that repeats one rare word most (which BM25 and ts_rank_cd put first)."""
    owner = make_user("reader")
    texts = {"penguins.txt": "penguin " * 12 + "notes", "both.txt": "otters and a zebra at the zoo",
             **{f"other{i}.txt": f"otters zebra report {i}" for i in range(3)}}
    for name, content in texts.items():
        upload_ready(api, owner, name, content.encode())
    with runtime.session() as db:
        scope = Scope(db.scalar(select(User.id).where(User.uuid == owner["id"])))
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", "none")
    for search_type in ("SIMILARITY", "HYBRID", "MMR"):
        hits = run(scope, "penguin otters zebra", search_type=search_type, k=5)
        scores = [h["relevance_score"] for h in hits]
        assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(2 / 3, abs=1e-3), hits
        assert hits[-1]["filename"] == "penguins.txt"
        assert run(scope, "penguin otters zebra", search_type=search_type, k=1)[0]["filename"] != "penguins.txt"


def test_keyword_search_finds_words_inside_unspaced_runs(api, make_user, monkeypatch):
    """Chinese, Japanese and Korean are written without spaces: a word is found inside a longer run."""
    owner = make_user("reader")
    for name, content in {"meeting.txt": "我们明天开会讨论预算。", "zoo.txt": "动物园里有斑马和企鹅。",
                          "train.txt": "電車は午後三時に出発します。", "budget.txt": "The budget is due.",
                          "script.txt": "用Python写脚本。"}.items():
        upload_ready(api, owner, name, content.encode())
    with runtime.session() as db:
        scope = Scope(db.scalar(select(User.id).where(User.uuid == owner["id"])))
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", "none")
    assert [h["filename"] for h in run(scope, "开会")] == ["meeting.txt"]
    assert [h["filename"] for h in run(scope, "企鹅在哪里")] == ["zoo.txt"]  # some of the query's pairs
    assert [h["filename"] for h in run(scope, "午後")] == ["train.txt"]
    assert [h["filename"] for h in run(scope, "鹅")] == ["zoo.txt"]  # one character, inside a run
    assert run(scope, "会议") == []
    assert {h["filename"] for h in run(scope, "预算 budget", k=5)} == {"meeting.txt", "budget.txt"}
    # A word written against a run (PostgreSQL's parser keeps it inside the run) is another of its words.
    assert {h["filename"] for h in run(scope, "开会 python", k=5)} == {"meeting.txt", "script.txt"}


@pytest.mark.skipif(not REAL_SERVICES, reason="PostgreSQL's index for unspaced scripts (migration 0008)")
def test_postgresql_finds_unspaced_words_through_an_index():
    """The query's condition is the indexed column: the planner can use the index, no full scan."""
    with runtime.session() as db:
        db.execute(sql_text("SET LOCAL enable_seqscan = off"))
        query = select(DocumentChunk.id).where(shares_a_pair(["企鹅", "鹅"]))
        plan = "\n".join(db.execute(sql_text("EXPLAIN " + str(query.compile(
            dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True})))).scalars())
        assert "ix_document_chunks_unspaced_terms" in plan, plan


def test_a_chunk_stores_its_unspaced_characters_and_pairs(api, make_user):
    owner = make_user("reader")
    upload_ready(api, owner, "mixed.txt", "Zoo: 斑马和企鹅 live here.".encode())
    with runtime.session() as db:
        stored = db.scalars(select(DocumentChunk.unspaced_terms).join(User, User.id == DocumentChunk.owner_id)
                            .where(User.uuid == owner["id"])).all()
    assert stored == [sorted({"斑", "马", "和", "企", "鹅", "斑马", "马和", "和企", "企鹅"})]


def test_split_page_windows_and_overlap():
    text = " ".join(f"w{i}" for i in range(25))
    pieces = split_page(3, text, size=10, overlap=4)
    assert [p.content.split()[0] for p in pieces] == ["w0", "w6", "w12", "w18"]
    assert all(p.page_number == 3 and p.token_count <= 10 for p in pieces)
    assert chunk_pages([(1, "a b"), (2, ""), (3, "c")], 10, 2)[1].page_number == 3


def test_text_without_spaces_is_chunked_to_size():
    """Chinese or Japanese runs and minified data have no spaces to split at: a run longer than a
    chunk is split between its tokens (each unspaced character is one), so no chunk outgrows `size`."""
    chinese = "我们明天开会讨论预算。" * 50  # 550 characters: about 550 tokens for a BPE tokenizer
    pieces = split_page(None, chinese, size=20, overlap=5)
    assert len(pieces) > 25 and all(p.token_count <= 20 and len(p.content) <= 20 for p in pieces)
    assert "".join(p.content[5:] if i else p.content for i, p in enumerate(pieces)) == chinese  # 5 overlap
    data = ",".join(f'{{"id":{i},"name":"item{i}"}}' for i in range(100))
    assert all(p.token_count <= 20 for p in split_page(1, data, size=20, overlap=5))
    assert [p.token_count for p in split_page(1, "用Python写 代码", size=20, overlap=5)] == [5]


def test_a_long_run_of_letters_and_digits_is_chunked_to_size():
    """A hex or base64 blob in a PDF's text was one token however long: a 2 MB run was one 2 MB chunk."""
    blob = "0123456789abcdef" * 131_072  # 2 MB without a space or punctuation mark
    pieces = split_page(1, f"Key: {blob} end", size=200, overlap=40)
    assert len(pieces) > 600 and all(p.token_count <= 200 and len(p.content) <= 200 * 16 for p in pieces)
    assert pieces[0].content.startswith("Key: 0123") and pieces[-1].content.endswith("cdef end")


def test_fuse_and_mmr():
    fused = fuse([1, 2, 3], [1, 3])
    assert fused[1] == pytest.approx(1.0) and fused[3] > fused[2]
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    near_a = np.array([0.99, 0.141])
    picks = mmr(np.array([0.8, 0.6]), [(1, a), (2, near_a / np.linalg.norm(near_a)), (3, b)], 2, 0.3)
    assert picks == [2, 3]  # by similarity alone the second pick would be 1, a near-duplicate of 2
