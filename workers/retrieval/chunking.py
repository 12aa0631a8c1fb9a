"""Split a document's pages into overlapping chunks of about `size` tokens, keeping page numbers.

No tokenizer data can be fetched here, so tokens are counted as runs of word characters and
single punctuation marks (a run of more than 16 letters and digits as one per 16), which tracks
BPE token counts of English prose within ~20%, and each character of a script written without
spaces (Chinese, Japanese, Korean) as one.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from pypdf import PdfReader

from workers.retrieval.text import UNSPACED_CHARS

PIECE = re.compile(r"\S+")
# A word counts a token per 16 characters: prose words are shorter, and a hex or base64 blob
# (thousands of letters and digits without a break) is cut like any text without spaces.
WORD_TOKEN_CHARS = 16
TOKEN = re.compile(f"[{UNSPACED_CHARS}]|[^\\W{UNSPACED_CHARS}]{{1,{WORD_TOKEN_CHARS}}}|[^\\w\\s]")


@dataclass(frozen=True)
class Piece:
    page_number: int | None
    content: str
    token_count: int


def pdf_pages(data: bytes, start: int, count: int) -> tuple[list[tuple[int, str]], int]:
    """Text of pages `start`.. `start + count - 1` (0-based) as (page number, text); and the page total."""
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")
    total = len(reader.pages)
    pages = [(n + 1, reader.pages[n].extract_text() or "") for n in range(start, min(start + count, total))]
    return pages, total


def split_page(page_number: int | None, text: str, size: int, overlap: int) -> list[Piece]:
    """Windows of whitespace-separated pieces, ~`size` tokens each, overlapping by ~`overlap`."""
    spans = word_spans(text, size)
    pieces: list[Piece] = []
    start = 0
    while start < len(spans):
        end, used = start, 0
        while end < len(spans) and (used + spans[end][2] <= size or end == start):
            used += spans[end][2]
            end += 1
        pieces.append(Piece(page_number, text[spans[start][0]:spans[end - 1][1]], used))
        if end >= len(spans):
            break
        back, next_start = 0, end
        while next_start > start + 1 and back + spans[next_start - 1][2] <= overlap:
            next_start -= 1
            back += spans[next_start][2]
        start = next_start
    return pieces


def word_spans(text: str, size: int) -> list[tuple[int, int, int]]:
    """(start, end, tokens) of each whitespace-separated word of `text`; a word of more than `size`
    tokens (a Chinese or Japanese sentence, minified data, a hex blob) as its tokens, so a chunk can end inside it."""
    spans = []
    for word in PIECE.finditer(text):
        tokens = [(word.start() + t.start(), word.start() + t.end(), 1) for t in TOKEN.finditer(word.group())]
        spans.extend(tokens if len(tokens) > size else [(word.start(), word.end(), max(1, len(tokens)))])
    return spans


def chunk_pages(pages: list[tuple[int | None, str]], size: int, overlap: int) -> list[Piece]:
    """Chunks of each page in order; a chunk never spans two pages, so it has one page number."""
    return [piece for number, text in pages for piece in split_page(number, text, size, min(overlap, size // 2))]
