"""Re-score retrieved chunks: a `/v1/rerank` endpoint when configured, else a local blend.

The endpoint form is the one vLLM, Infinity and TEI's OpenAI-style routes serve:
`POST {model, query, documents, top_n}` → `{results: [{index, relevance_score}]}`.
The local re-scoring is `0.5 × semantic relevance + 0.5 × keyword coverage` (the share of
the query's content words the chunk contains); without vectors it is the coverage alone.
"""
from __future__ import annotations

import logging

from workers.retrieval import text
from workers.retrieval.scoring import Ranked
from workers.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0


class RerankFailed(Exception):
    """The rerank endpoint did not give a usable answer."""


def with_endpoint(settings: Settings, query: str, ranked: list[Ranked]) -> list[Ranked]:
    import httpx2  # here, not at the top: the web tier imports this module (see workers/public_client.py)

    headers = {"Authorization": f"Bearer {settings.rerank_api_key}"} if settings.rerank_api_key else {}
    body = {"model": settings.rerank_model, "query": query, "documents": [r.content for r in ranked],
            "top_n": len(ranked)}
    try:
        answer = httpx2.post(settings.rerank_url, json=body, headers=headers, timeout=TIMEOUT_S)
        answer.raise_for_status()
        results = answer.json()["results"]
        scores = {int(item["index"]): float(item["relevance_score"]) for item in results}
    except (httpx2.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise RerankFailed(type(exc).__name__) from exc
    rescored = [r.with_score(scores[i]) for i, r in enumerate(ranked) if i in scores]
    return sorted(rescored, key=lambda r: -r.score)


def locally(query: str, ranked: list[Ranked]) -> list[Ranked]:
    query_terms = text.terms(query)
    rescored = []
    for r in ranked:
        keyword = text.coverage(query_terms, r.content)
        rescored.append(r.with_score(keyword if r.semantic is None else 0.5 * r.semantic + 0.5 * keyword))
    return sorted(rescored, key=lambda r: -r.score)


def rerank(settings: Settings, query: str, ranked: list[Ranked], notes: list[str]) -> list[Ranked]:
    """`ranked` re-scored and re-ordered; falls back to the local blend if the endpoint fails."""
    if not ranked:
        return ranked
    if settings.rerank_url:
        try:
            return with_endpoint(settings, query, ranked)
        except RerankFailed as exc:
            log.warning("rerank endpoint failed (%s); re-scoring locally", exc)
            notes.append("Rerank service unavailable: re-scored locally")
    return locally(query, ranked)
