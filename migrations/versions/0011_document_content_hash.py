"""documents.content_hash: an upload's copy already stored is found by its bytes.

Uploading the same file twice stored, parsed, chunked and embedded it twice and counted it twice
against the user's limits. An upload now answers the copy the user already has in the same place
(the library, or that session) unless it FAILED. `content_hash` is the SHA-256 of `data` in hex,
filled in here for the documents stored before (their bytes are in `data`), and indexed with the
owner, whose uploads are checked and stored one at a time (document_quota.lock_uploads).

Not a unique index: a failed document's copy is stored anew, and copies stored before this
revision stay as they are.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 04:00:00.000000
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

INDEX = "ix_documents_owner_id_content_hash"
BATCH = 10  # documents of up to 10 MB each: at most 100 MB in memory at once

documents = sa.table("documents", sa.column("id", sa.Integer), sa.column("data", sa.LargeBinary),
                     sa.column("content_hash", sa.String))


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("documents", sa.Column("content_hash", sa.String(length=64), nullable=True))
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE documents SET content_hash = encode(sha256(data), 'hex') WHERE data IS NOT NULL")
    else:
        fill_in_hashes(bind)
    op.create_index(INDEX, "documents", ["owner_id", "content_hash"], unique=False)


def fill_in_hashes(bind) -> None:
    """The hashes of the stored documents, computed here (SQLite has no SHA-256), a batch at a time."""
    last = 0
    while True:
        rows = bind.execute(sa.select(documents.c.id, documents.c.data).where(documents.c.id > last)
                            .order_by(documents.c.id).limit(BATCH)).all()
        if not rows:
            break
        hashes = [{"document_id": row.id, "digest": hashlib.sha256(row.data).hexdigest()}
                  for row in rows if row.data is not None]
        if hashes:
            bind.execute(documents.update().where(documents.c.id == sa.bindparam("document_id"))
                         .values(content_hash=sa.bindparam("digest")), hashes)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index(INDEX, table_name="documents")
    op.drop_column("documents", "content_hash")
