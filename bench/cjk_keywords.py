"""Keyword search in Chinese, Japanese and Korean on PostgreSQL: the index of migration 0008
against scoring every chunk of the library in Python (what the search did before it).

    python -m bench.cjk_keywords --database-url postgresql://postgres@127.0.0.1:5432/parley_bench_cjk \
        [--chunks 20000] [--runs 20]

The database is migrated, then one user gets `--chunks` chunks of 200 characters drawn from
3,000 common CJK characters (so a character pair is in a few chunks and a single character in
many); the user and their chunks are deleted at the end. Each query runs `--runs` times both
ways; the figures are p50/p99 in ms and the number of chunks each way returns (the same).
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

from sqlalchemy import delete, insert, select

from models import Document, DocumentChunk, User
from models.base import make_engine, make_sessionmaker, utcnow
from web.cli import upgrade_database
from workers.retrieval import store, text
from workers.retrieval.store import Scope
from workers.settings import Settings

CHARACTERS = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
QUERIES = {"one pair": "一丁", "a sentence": "七万丈三上下不与", "one character": "丐",
           "with an English word": "丑专 budget"}


def fill(db, chunks: int) -> int:
    user = User(email=f"cjk-{uuid.uuid4().hex[:8]}@bench.test", username=f"cjk{uuid.uuid4().hex[:8]}",
                password_hash="-")
    db.add(user)
    db.flush()
    document = Document(owner_id=user.id, filename="cjk.txt", mime_type="text/plain", status="READY", file_size=0)
    db.add(document)
    db.flush()
    rng = random.Random(7)
    contents = ["".join(rng.choices(CHARACTERS, k=200)) for _ in range(chunks)]
    rows = [{"uuid": str(uuid.uuid4()), "document_id": document.id, "owner_id": user.id, "chunk_index": i,
             "content": content, "token_count": 200, "unspaced_terms": text.unspaced_terms(content),
             "created_at": utcnow()} for i, content in enumerate(contents)]
    for start in range(0, chunks, 5000):
        db.execute(insert(DocumentChunk), rows[start:start + 5000])
    db.commit()
    return user.id


def timed(call, runs: int) -> tuple[list[float], int]:
    took, found = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        found = len(call())
        took.append((time.perf_counter() - t0) * 1000)
    return took, found


def every_chunk(db, scope: Scope, terms: list[str]) -> list[tuple[int, float]]:
    rows = db.execute(select(DocumentChunk.id, DocumentChunk.content).where(*scope.where())).all()
    return store.best_by_bm25(terms, rows, len(rows), 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--analyze", action=argparse.BooleanOptionalAction, default=True,
                        help="ANALYZE after filling (--no-analyze: the planner's statistics predate the chunks, "
                             "as right after a large upload, until autovacuum analyzes the table)")
    args = parser.parse_args()
    engine = make_engine(Settings(_env_file=None, database_url=args.database_url).resolved_database_url())
    upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as db:
        user_id = fill(db, args.chunks)
    if args.analyze:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE document_chunks")
            conn.commit()
    scope = Scope(user_id)
    try:
        with sessions() as db:
            print(f"{args.chunks} chunks, {args.runs} runs; ms p50 / p99 (chunks found)")
            for name, query in QUERIES.items():
                terms = text.terms(query)
                indexed, found = timed(lambda: store.keyword_matches(db, scope, terms, 20), args.runs)
                scanned, found_scan = timed(lambda: every_chunk(db, scope, terms), args.runs)
                print(f"{name:22} index {p(indexed, 50):8.1f} / {p(indexed, 99):8.1f} ({found})   "
                      f"every chunk {p(scanned, 50):8.1f} / {p(scanned, 99):8.1f} ({found_scan})")
    finally:
        with sessions() as db:
            db.execute(delete(User).where(User.id == user_id))
            db.commit()


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


if __name__ == "__main__":
    main()
