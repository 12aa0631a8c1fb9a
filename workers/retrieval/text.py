"""Words, keyword scores and query terms, the same on every database."""
from __future__ import annotations

import math
import re
from collections import Counter

WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Scripts written without spaces (kana, CJK ideographs, Hangul syllables): a run of them is
# read as its overlapping character pairs, so a word is found inside a longer run.
UNSPACED_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"  # a character class's ranges
UNSPACED = re.compile(f"[{UNSPACED_CHARS}]+")
STOPWORDS = frozenset(
    "a an and are as at be but by can do does did for from has have how i if in into is it its me my no not of "
    "on or our so than that the their them then there these they this to was we were what when where which who "
    "why will with would you your about after all also any before between both each few more most other over "
    "same should some such only own up down out very just".split()
)


def words(text: str, query: bool = False) -> list[str]:
    """The words of a text; a run of an unspaced script as its character pairs and (except in a
    query) its characters, so a one-character query word is found inside a run too."""
    found = []
    for word in WORD.findall(text.lower()):
        found.extend(split_unspaced(word, with_chars=not query) if UNSPACED.search(word) else (word,))
    return found


def split_unspaced(word: str, with_chars: bool) -> list[str]:
    """A word holding unspaced scripts: its other parts whole, each unspaced run as character pairs."""
    parts, at = [], 0
    for run in UNSPACED.finditer(word):
        if run.start() > at:
            parts.append(word[at:run.start()])
        chars = run.group()
        pairs = [chars[i:i + 2] for i in range(len(chars) - 1)]
        parts.extend(pairs + list(chars) if with_chars else pairs or [chars])
        at = run.end()
    if at < len(word):
        parts.append(word[at:])
    return parts


def unspaced_terms(text: str) -> list[str] | None:
    """The distinct characters and character pairs of a text's unspaced runs, and the other words
    written against a run ("python" of "用python写"), which PostgreSQL's parser keeps inside it
    (None without any run): what a chunk is indexed by for queries holding those scripts."""
    found = sorted({part for word in WORD.findall(text.lower()) if UNSPACED.search(word)
                    for part in split_unspaced(word, with_chars=True)})
    return found or None


def terms(text: str) -> list[str]:
    """The distinct content words of a query, in order."""
    return list(dict.fromkeys(w for w in words(text, query=True) if w not in STOPWORDS))


def coverage(query_terms: list[str], text: str) -> float:
    """The share of the query's content words found in `text` (0-1): the keyword relevance."""
    if not query_terms:
        return 0.0
    present = set(words(text))
    return sum(1 for t in query_terms if t in present) / len(query_terms)


def bm25(query_terms: list[str], documents: list[str], k1: float = 1.2, b: float = 0.75,
         corpus_size: int | None = None) -> list[float]:
    """Okapi BM25 of each document for the query (SQLite's keyword ranking, and PostgreSQL's for
    unspaced scripts). `documents` may be the corpus's documents holding a query word, with
    `corpus_size` the whole corpus's: the average length is then theirs."""
    bags = [Counter(words(d)) for d in documents]
    if not bags or not query_terms:
        return [0.0] * len(documents)
    total = max(corpus_size or 0, len(bags))
    avg = sum(sum(bag.values()) for bag in bags) / len(bags) or 1.0
    having = {term: sum(1 for bag in bags if term in bag) for term in query_terms}
    idf = {term: math.log(1 + (total - n + 0.5) / (n + 0.5)) for term, n in having.items()}
    scores = []
    for bag in bags:
        length, score = sum(bag.values()), 0.0
        for term in query_terms:
            freq = bag.get(term, 0)
            if freq:
                score += idf[term] * freq * (k1 + 1) / (freq + k1 * (1 - b + b * length / avg))
        scores.append(score)
    return scores
