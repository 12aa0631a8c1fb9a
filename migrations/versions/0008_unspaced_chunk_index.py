"""Chunks' Chinese, Japanese and Korean terms, indexed on PostgreSQL for keyword search.

PostgreSQL's text parser keeps a run of these scripts whole, so the full-text index of 0006
cannot find a word inside a longer run (nor "python" in "用Python写"), and such queries scored
every chunk of the user's library in the worker. `document_chunks.unspaced_terms` holds the
distinct characters and character pairs of a chunk's runs, and the other parts of a word
holding a run (NULL without any run), written with the chunk
(workers.retrieval.text.unspaced_terms); a GIN index on it finds the chunks that share a term
with the query. Existing chunks are filled in here. SQLite stores the column but searches as
before (in Python).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 18:00:00.000000
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

INDEX = "ix_document_chunks_unspaced_terms"
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
    postgresql_db = bind.dialect.name == "postgresql"
    op.add_column("document_chunks",
                  sa.Column("unspaced_terms", sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql"),
                            nullable=True))
    chunks = sa.table("document_chunks", sa.column("id", sa.Integer), sa.column("content", sa.Text),
                      sa.column("unspaced_terms", sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")))
    last = 0
    while True:
        rows = bind.execute(sa.select(chunks.c.id, chunks.c.content).where(chunks.c.id > last)
                            .order_by(chunks.c.id).limit(BATCH)).all()
        if not rows:
            break
        found = [{"chunk_id": row.id, "terms": unspaced_terms(row.content)} for row in rows]
        found = [item for item in found if item["terms"]]
        if found:
            bind.execute(chunks.update().where(chunks.c.id == sa.bindparam("chunk_id"))
                         .values(unspaced_terms=sa.bindparam("terms")), found)
        last = rows[-1].id
    if postgresql_db:
        op.execute(f"CREATE INDEX {INDEX} ON document_chunks USING gin (unspaced_terms)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.drop_column("document_chunks", "unspaced_terms")
