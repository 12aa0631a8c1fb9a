"""Retrieval evaluation: recall@k and MRR of each search type with each embedding provider,
and ingestion throughput (pages/s).

    python -m bench.retrieval_eval [--k 4] [--pages 300] [--database-url URL]

The labelled corpus `bench/rag_corpus.json` (made for Parley: six documents, 30 passages,
30 questions each labelled with the passage that answers it) is ingested through the real
jobs (`parse_document` then `embed_chunks`, RQ dependencies and continuations, run by an RQ
worker in burst mode on an in-process fakeredis) for a fresh user per provider, then every
question is searched with SIMILARITY, HYBRID and MMR (score_threshold 0, so the ranking is
measured, not the cut-off). A retrieved chunk is relevant when it comes from the labelled
document and contains the start or the end of the labelled passage.

Providers: `openai` is the configured upstream's `/v1/embeddings` (`OPENAI_BASE_URL`,
`OPENAI_API_KEY`, `EMBEDDING_MODEL`); without `OPENAI_BASE_URL` it is the test suite's fake
upstream, whose vectors are 64-dimensional hashed bags of words (so it measures the pipeline,
not a language model). `local` is all-MiniLM-L6-v2 (when the `local-embeddings` extra is
installed). `none` is full-text search only. The database is a temporary SQLite
file unless `--database-url` names one (it is migrated; nothing is dropped).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

from models import Document, DocumentChunk, User
from tests.fake_openai import FakeOpenAI
from tests.pdfs import text_pdf
from web.cli import upgrade_database
from workers import embedding, queues, runtime
from workers.retrieval.search import SEARCH_TYPES, SearchOptions, search
from workers.retrieval.store import Scope
from workers.settings import Settings

CORPUS = Path(__file__).with_name("rag_corpus.json")
WORDS = ("the river valley holds old farms where families grow barley wheat and apples while the town "
         "market sells bread cheese honey and wool to travellers crossing the mountain pass each summer").split()


def make_settings(args: argparse.Namespace, provider: str, base_url: str | None) -> Settings:
    values = {"database_url": args.database_url, "redis_url": None, "embedding_provider": provider,
              "openai_base_url": base_url or os.environ.get("OPENAI_BASE_URL"),
              "openai_api_key": os.environ.get("OPENAI_API_KEY") or "bench-key"}
    return Settings(_env_file=None, **values)


def new_user(rt: runtime.Runtime) -> int:
    with rt.sessions() as db:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        user = User(email=f"{name}@example.com", username=name, password_hash="-")
        db.add(user)
        db.commit()
        return user.id


def ingest(rt: runtime.Runtime, owner_id: int, files: dict[str, bytes]) -> list[int]:
    """Store the files as library documents and index them with a real RQ worker; returns their ids."""
    ids = []
    with rt.sessions() as db:
        for name, data in files.items():
            mime = "application/pdf" if name.endswith(".pdf") else "text/markdown" if name.endswith(".md") \
                else "text/plain"
            doc = Document(owner_id=owner_id, filename=name, mime_type=mime, file_size=len(data), data=data, meta={})
            db.add(doc)
            db.flush()
            ids.append((doc.id, doc.uuid))
        db.commit()
    for doc_id, doc_uuid in ids:
        queues.enqueue_ingestion(rt.redis, doc_id, doc_uuid, small=False,
                                 parse_timeout_s=rt.settings.document_parse_timeout_s)
    SimpleWorker([queues.queue(queues.DOCUMENTS, rt.redis)], connection=rt.redis,
                 serializer=JSONSerializer).work(burst=True, logging_level="WARNING")
    with rt.sessions() as db:
        for doc_id, _ in ids:
            doc = db.get(Document, doc_id)
            if not (doc.meta or {}).get("indexed"):
                raise SystemExit(f"{doc.filename} was not indexed: {doc.status} {doc.error}")
    return [doc_id for doc_id, _ in ids]


def corpus_files(corpus: dict) -> dict[str, bytes]:
    files = {}
    for name, passages in corpus["documents"].items():
        files[name] = text_pdf(passages) if name.endswith(".pdf") else "\n\n".join(passages).encode()
    return files


def relevant(chunk: dict, document: str, passage: str) -> bool:
    words = passage.split()
    return chunk["filename"] == document and (" ".join(words[:8]) in chunk["content"]
                                              or " ".join(words[-8:]) in chunk["content"])


def evaluate(rt: runtime.Runtime, scope: Scope, corpus: dict, search_type: str, k: int) -> dict[str, float]:
    hits_at_1 = hits_at_k = reciprocal = 0.0
    started = time.perf_counter()
    for item in corpus["questions"]:
        passage = corpus["documents"][item["document"]][item["passage"]]
        with rt.sessions() as db:
            found = search(db, rt.settings, scope, item["question"],
                           SearchOptions(search_type=search_type, k=k, score_threshold=0.0)).hits
        rank = next((i for i, chunk in enumerate(found, start=1) if relevant(chunk, item["document"], passage)), None)
        if rank is not None:
            hits_at_1 += rank == 1
            hits_at_k += 1
            reciprocal += 1 / rank
    n = len(corpus["questions"])
    return {"recall@1": hits_at_1 / n, f"recall@{k}": hits_at_k / n, "mrr": reciprocal / n,
            "ms_per_query": (time.perf_counter() - started) * 1000 / n}


def throughput(rt: runtime.Runtime, pages: int) -> tuple[float, int]:
    """Pages per second to parse, chunk and embed one `pages`-page PDF of ~220 words a page."""
    text = [" ".join(WORDS[(p + i) % len(WORDS)] for i in range(220)) + f" page{p}" for p in range(pages)]
    data = text_pdf(text)
    owner = new_user(rt)
    started = time.perf_counter()
    [doc_id] = ingest(rt, owner, {f"book{pages}.pdf": data})
    elapsed = time.perf_counter() - started
    with rt.sessions() as db:
        chunks = len(db.scalars(select(DocumentChunk.id).where(DocumentChunk.document_id == doc_id)).all())
    return pages / elapsed, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--pages", type=int, default=300, help="pages of the throughput PDF (0: skip)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    args.database_url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    fake = None if os.environ.get("OPENAI_BASE_URL") else FakeOpenAI().start()
    corpus = json.loads(CORPUS.read_text())
    print(f"corpus: {len(corpus['documents'])} documents, "
          f"{sum(map(len, corpus['documents'].values()))} passages, {len(corpus['questions'])} questions; "
          f"k={args.k}; database: {args.database_url.split(':')[0]}")
    print(f"{'provider':<30}{'search':<12}{'recall@1':>9}{f'recall@{args.k}':>10}{'MRR':>7}{'ms/query':>10}")
    providers = ["openai", "local", "none"] if embedding.local_installed() else ["openai", "none"]
    for provider in providers:
        rt = runtime.configure(make_settings(args, provider, fake.base_url if fake else None))
        upgrade_database(rt.engine)
        label = {"none": "none (full-text)", "local": "local all-MiniLM-L6-v2"}.get(
            provider, "openai (fake, hashed)" if fake else f"openai {rt.settings.embedding_model}")
        owner = new_user(rt)
        ingest(rt, owner, corpus_files(corpus))
        for search_type in SEARCH_TYPES if provider != "none" else ("SIMILARITY",):
            scores = evaluate(rt, Scope(owner), corpus, search_type, args.k)
            name = search_type if provider != "none" else "(any)"
            print(f"{label:<30}{name:<12}{scores['recall@1']:>9.2f}{scores[f'recall@{args.k}']:>10.2f}"
                  f"{scores['mrr']:>7.2f}{scores['ms_per_query']:>10.1f}")
        if args.pages:
            rate, chunks = throughput(rt, args.pages)
            print(f"{label:<30}ingestion   {args.pages} pages → {chunks} chunks at {rate:.1f} pages/s")
        rt.engine.dispose()
    if fake is not None:
        fake.stop()


if __name__ == "__main__":
    main()
