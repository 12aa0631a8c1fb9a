"""Search a user's document chunks: SIMILARITY, HYBRID (RRF) or MMR, optionally reranked.

`score_threshold` applies to semantic relevance, `(1 + cosine) / 2`: SIMILARITY and MMR keep
chunks at or above it; HYBRID keeps a chunk above it or one that contains query words.
Without an embedding provider (or when it fails) the search is by keywords only, scored by
keyword coverage, and the threshold is not applied: the notes say so, for the status events.
Several queries (a follow-up and the questions before it) are searched one by one and their
hits merged. A passage found more than once (a file uploaded twice, text two documents share)
is one hit: its best-scored chunk, so the `k` hits are `k` different passages. Documents still
being indexed are not searched; a note says how many there are.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from workers import embedding
from workers.retrieval import rerank as reranking
from workers.retrieval import store, text
from workers.retrieval.scoring import Ranked, fuse, mmr, relevance
from workers.settings import Settings

SEARCH_TYPES = ("SIMILARITY", "HYBRID", "MMR")


@dataclass(frozen=True)
class SearchOptions:
    search_type: str = "SIMILARITY"
    k: int = 4
    score_threshold: float = 0.7
    rerank: bool = False
    fetch_k: int = 20
    lambda_mult: float = 0.5

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> SearchOptions:
        known = {k: v for k, v in (values or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class SearchResult:
    hits: list[dict[str, Any]]  # citation fields, content and relevance_score, best first
    mode: str  # "vector" or "full-text"
    notes: list[str] = field(default_factory=list)


def search(db: Session, settings: Settings, scope: store.Scope, query: str, options: SearchOptions) -> SearchResult:
    scope, notes = searchable(db, scope)
    return ranked_search(db, settings, scope, query, options, notes)


def searchable(db: Session, scope: store.Scope) -> tuple[store.Scope, list[str]]:
    """The scope without the documents still being indexed, and the note saying how many there are."""
    scope = replace(scope, indexing=store.still_indexing(db, scope))
    waiting = len(scope.indexing)
    if not waiting:
        return scope, []
    return scope, ["1 document is still being indexed and was not searched" if waiting == 1
                   else f"{waiting} documents are still being indexed and were not searched"]


def ranked_search(db: Session, settings: Settings, scope: store.Scope, query: str, options: SearchOptions,
                  notes: list[str]) -> SearchResult:
    """One query's search of a `searchable` scope; `notes` gains what the search has to say."""
    query_vector, model = embed_query(settings, query, notes)
    pool = max(options.fetch_k, options.k)  # more than `k`: repeated passages are dropped before the cut
    if query_vector is None:
        ranked = by_keywords(db, scope, query, pool)
    elif options.search_type == "HYBRID":
        ranked = hybrid(db, scope, query, query_vector, model, options)
    elif options.search_type == "MMR":
        ranked = diverse(db, scope, query_vector, model, options)
    else:
        ranked = [r for r in similar(db, scope, query_vector, model, pool) if r.score >= options.score_threshold]
    rows = store.chunk_rows(db, [r.chunk_id for r in ranked])
    # A chunk missing from `rows` went with its document, deleted since the ranking query ran.
    ranked = distinct([Ranked(r.chunk_id, r.score, r.semantic, rows[r.chunk_id]["content"])
                       for r in ranked if r.chunk_id in rows])
    if options.search_type == "MMR" and query_vector is not None:
        ranked = ranked[:options.k]  # MMR's picks, in its order; a rerank re-orders only those
    if options.rerank:
        ranked = reranking.rerank(settings, query, ranked, notes)
    hits = [{**rows[r.chunk_id], "relevance_score": round(r.score, 4)} for r in ranked[:options.k]]
    return SearchResult(hits, "full-text" if query_vector is None else "vector", notes)


def search_all(db: Session, settings: Settings, scope: store.Scope, queries: list[str],
               options: SearchOptions) -> SearchResult:
    """Each query's search, merged: a chunk found by several keeps its best score; the `k` best first."""
    scope, notes = searchable(db, scope)  # once for every query
    results = [ranked_search(db, settings, scope, query, options, list(notes)) for query in queries]
    best: dict[str, dict[str, Any]] = {}
    for hit in (hit for result in results for hit in result.hits):
        key = passage(hit["content"])
        if key not in best or hit["relevance_score"] > best[key]["relevance_score"]:
            best[key] = hit
    hits = sorted(best.values(), key=lambda hit: -hit["relevance_score"])[:options.k]  # ties: the first query's first
    notes = list(dict.fromkeys(note for result in results for note in result.notes))
    return SearchResult(hits, results[0].mode, notes)


def passage(content: str) -> str:
    """A chunk's text with its spacing evened out: the same passage whatever file it came from."""
    return " ".join(content.split())


def distinct(ranked: list[Ranked]) -> list[Ranked]:
    """The ranking with each passage once, at its first (best) place."""
    seen: set[str] = set()
    kept = []
    for r in ranked:
        key = passage(r.content)
        if key not in seen:
            seen.add(key)
            kept.append(r)
    return kept


def embed_query(settings: Settings, query: str, notes: list[str]) -> tuple[np.ndarray | None, str | None]:
    provider = embedding.provider(settings)
    if provider is None:
        notes.append("No embedding provider is configured: searching by keywords only")
        return None, None
    try:
        return provider.embed([query])[0], provider.model
    except embedding.EmbeddingUnavailable:
        notes.append("The embedding service is unavailable: searching by keywords only")
        return None, None


def similar(db: Session, scope: store.Scope, query_vector: np.ndarray, model: str, limit: int) -> list[Ranked]:
    found = store.nearest(db, scope, query_vector, model, limit)
    return [Ranked(chunk_id, relevance(cosine), relevance(cosine)) for chunk_id, cosine, _ in found]


def by_keywords(db: Session, scope: store.Scope, query: str, limit: int) -> list[Ranked]:
    """The `limit` best keyword matches ordered by their score, keyword coverage (ties in keyword-rank order):
    the database's rank alone puts a chunk repeating one rare query word above one holding most of them."""
    query_terms = text.terms(query)
    found = store.keyword_matches(db, scope, query_terms, limit)
    rows = store.chunk_rows(db, [chunk_id for chunk_id, _ in found])
    ranked = [Ranked(chunk_id, text.coverage(query_terms, rows[chunk_id]["content"])) for chunk_id, _ in found
              if chunk_id in rows]  # not a document deleted since the keyword query ran
    return sorted(ranked, key=lambda r: -r.score)


def hybrid(db: Session, scope: store.Scope, query: str, query_vector: np.ndarray, model: str,
           options: SearchOptions) -> list[Ranked]:
    pool = max(options.fetch_k, options.k)
    semantic = similar(db, scope, query_vector, model, pool)
    keyword_ids = [chunk_id for chunk_id, _ in store.keyword_matches(db, scope, text.terms(query), pool)]
    fused = fuse([r.chunk_id for r in semantic], keyword_ids)
    by_id = {r.chunk_id: r.semantic for r in semantic}
    keep = {r.chunk_id for r in semantic if r.score >= options.score_threshold} | set(keyword_ids)
    ranked = [Ranked(chunk_id, score, by_id.get(chunk_id)) for chunk_id, score in fused.items() if chunk_id in keep]
    ranked.sort(key=lambda r: (-r.score, r.chunk_id))
    return ranked[:pool]


def diverse(db: Session, scope: store.Scope, query_vector: np.ndarray, model: str,
            options: SearchOptions) -> list[Ranked]:
    found = store.nearest(db, scope, query_vector, model, max(options.fetch_k, options.k), with_vectors=True)
    candidates = [(chunk_id, np.asarray(vector, dtype=np.float32)) for chunk_id, cosine, vector in found
                  if relevance(cosine) >= options.score_threshold]
    cosine_of = {chunk_id: cosine for chunk_id, cosine, _ in found}
    # Every candidate in MMR's order: a repeated passage picked is dropped and the next pick takes its place.
    picked = mmr(query_vector, candidates, len(candidates), options.lambda_mult)
    return [Ranked(chunk_id, relevance(cosine_of[chunk_id]), relevance(cosine_of[chunk_id])) for chunk_id in picked]
