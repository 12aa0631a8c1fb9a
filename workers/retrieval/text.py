"""Words, keyword scores and query terms, the same on every database."""
from __future__ import annotations

import math
import re
from collections import Counter

WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be but by can do does did for from has have how i if in into is it its me my no not of "
    "on or our so than that the their them then there these they this to was we were what when where which who "
    "why will with would you your about after all also any before between both each few more most other over "
    "same should some such only own up down out very just".split()
)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def terms(text: str) -> list[str]:
    """The distinct content words of a query, in order."""
    return list(dict.fromkeys(w for w in words(text) if w not in STOPWORDS))


def coverage(query_terms: list[str], text: str) -> float:
    """The share of the query's content words found in `text` (0-1): the keyword relevance."""
    if not query_terms:
        return 0.0
    present = set(words(text))
    return sum(1 for t in query_terms if t in present) / len(query_terms)


def bm25(query_terms: list[str], documents: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each document for the query (SQLite's keyword ranking)."""
    bags = [Counter(words(d)) for d in documents]
    if not bags or not query_terms:
        return [0.0] * len(documents)
    avg = sum(sum(bag.values()) for bag in bags) / len(bags) or 1.0
    having = {term: sum(1 for bag in bags if term in bag) for term in query_terms}
    idf = {term: math.log(1 + (len(bags) - n + 0.5) / (n + 0.5)) for term, n in having.items()}
    scores = []
    for bag in bags:
        length, score = sum(bag.values()), 0.0
        for term in query_terms:
            freq = bag.get(term, 0)
            if freq:
                score += idf[term] * freq * (k1 + 1) / (freq + k1 * (1 - b + b * length / avg))
        scores.append(score)
    return scores
