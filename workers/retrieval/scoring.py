"""Scores of retrieved chunks: normalised relevance, reciprocal rank fusion and MMR.

Every score shown is in 0-1. Semantic relevance is `(1 + cosine) / 2`. A HYBRID score is
the chunk's reciprocal-rank-fusion sum (k = 60) over the vector and keyword rankings,
divided by the best possible sum (first in both), so 1.0 means first in both lists.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

RRF_K = 60


@dataclass(frozen=True)
class Ranked:
    chunk_id: int
    score: float
    semantic: float | None = None  # (1 + cosine) / 2, when the chunk has a vector
    content: str = ""

    def with_score(self, score: float) -> Ranked:
        return replace(self, score=score)


def relevance(cosine: float) -> float:
    return min(max((1.0 + cosine) / 2.0, 0.0), 1.0)


def fuse(vector_ids: list[int], keyword_ids: list[int]) -> dict[int, float]:
    """Reciprocal rank fusion of two rankings, normalised to 0-1."""
    fused: dict[int, float] = {}
    for ranking in (vector_ids, keyword_ids):
        for rank, chunk_id in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = 2.0 / (RRF_K + 1)
    return {chunk_id: score / best for chunk_id, score in fused.items()}


def mmr(query: np.ndarray, candidates: list[tuple[int, np.ndarray]], k: int, lambda_mult: float) -> list[int]:
    """Maximal marginal relevance: each pick trades similarity to the query (weight `lambda_mult`)
    against similarity to what is already picked."""
    if not candidates:
        return []
    matrix = np.vstack([vector for _, vector in candidates])
    to_query = matrix @ query
    picked: list[int] = []
    while len(picked) < min(k, len(candidates)):
        if picked:
            redundancy = (matrix @ matrix[picked].T).max(axis=1)
        else:
            redundancy = np.zeros(len(candidates))
        score = lambda_mult * to_query - (1.0 - lambda_mult) * redundancy
        score[picked] = -np.inf
        picked.append(int(np.argmax(score)))
    return [candidates[i][0] for i in picked]
