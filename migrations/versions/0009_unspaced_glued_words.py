"""Chunks' unspaced terms also hold the words written against a Chinese, Japanese or Korean run.

PostgreSQL's parser keeps "python" of "用Python写" inside the run, so the full-text index does
not find it, and a query holding such a run and "python" missed the chunk (SQLite found it).
`document_chunks.unspaced_terms` (0008) now also holds those words
(workers.retrieval.text.unspaced_terms); chunks with a run are filled in again here. Downgrading
keeps them: 0008's search looks up only characters and pairs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 19:00:00.000000
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# workers/retrieval/text.py's WORD and UNSPACED (kana, CJK ideographs, Hangul syllables) as of this revision.
WORD = re.compile(r"[^\W_]+", re.UNICODE)
RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
BATCH = 1000


def unspaced_terms(content: str) -> list[str] | None:
    """As workers.retrieval.text.unspaced_terms: each run's characters and pairs, and the other
    parts of a word holding a run."""
    found: set[str] = set()
    for word in WORD.findall(content.lower()):
        if not RUN.search(word):
            continue
        found.update(part for part in RUN.split(word) if part)
        for run in RUN.findall(word):
            found.update(run)
            found.update(run[i:i + 2] for i in range(len(run) - 1))
    return sorted(found) or None


def upgrade() -> None:
    bind = op.get_bind()
    terms_type = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")
    chunks = sa.table("document_chunks", sa.column("id", sa.Integer), sa.column("content", sa.Text),
                      sa.column("unspaced_terms", terms_type))
    last = 0
    while True:
        rows = bind.execute(sa.select(chunks.c.id, chunks.c.content)
                            .where(chunks.c.id > last, chunks.c.unspaced_terms.isnot(None))
                            .order_by(chunks.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(chunks.update().where(chunks.c.id == sa.bindparam("chunk_id"))
                     .values(unspaced_terms=sa.bindparam("terms")),
                     [{"chunk_id": row.id, "terms": unspaced_terms(row.content)} for row in rows])
        last = rows[-1].id


def downgrade() -> None:
    pass
