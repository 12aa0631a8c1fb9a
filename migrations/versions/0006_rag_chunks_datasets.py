"""Document chunks with embeddings, and datasets of library documents (the RAG API, 004).

PostgreSQL: the pgvector extension; chunk vectors in a `vector` column without a fixed
dimension, searched through partial HNSW indexes on `embedding::vector(N)` for the common
dimensions (64: the test upstream, 384: all-MiniLM-L6-v2, 1536: text-embedding-3-small),
and a GIN index for full-text search. Another dimension works with exact search; give it
an index in a new revision. SQLite stores vectors as packed float32 bytes (exact search).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import VECTOR

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

HNSW_DIMENSIONS = (64, 384, 1536)
FTS_INDEX = "ix_document_chunks_content_fts"


def hnsw_index(dim: int) -> str:
    return f"ix_document_chunks_hnsw_{dim}"


def is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    postgresql = is_postgresql()
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table('datasets',
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_datasets_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('owner_id', 'name', name=op.f('uq_datasets_owner_id')),
    sa.UniqueConstraint('uuid', name=op.f('uq_datasets_uuid'))
    )
    op.create_table('dataset_documents',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_dataset_documents_dataset_id_datasets'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'],
                            name=op.f('fk_dataset_documents_document_id_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_id', 'document_id', name=op.f('pk_dataset_documents'))
    )
    op.create_index(op.f('ix_dataset_documents_document_id'), 'dataset_documents', ['document_id'], unique=False)
    op.create_table('document_chunks',
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('chunk_index', sa.Integer(), nullable=False),
    sa.Column('page_number', sa.Integer(), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('token_count', sa.Integer(), nullable=False),
    sa.Column('embedding', VECTOR() if postgresql else sa.LargeBinary(), nullable=True),
    sa.Column('embedding_model', sa.String(length=100), nullable=True),
    sa.Column('embedding_dim', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_document_chunks_document_id_documents'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_document_chunks_owner_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_chunks')),
    sa.UniqueConstraint('document_id', 'chunk_index', name=op.f('uq_document_chunks_document_id')),
    sa.UniqueConstraint('uuid', name=op.f('uq_document_chunks_uuid'))
    )
    op.create_index(op.f('ix_document_chunks_owner_id'), 'document_chunks', ['owner_id'], unique=False)
    if postgresql:
        for dim in HNSW_DIMENSIONS:
            op.execute(f"CREATE INDEX {hnsw_index(dim)} ON document_chunks "
                       f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE embedding_dim = {dim}")
        op.execute(f"CREATE INDEX {FTS_INDEX} ON document_chunks "
                   "USING gin (to_tsvector('english'::regconfig, content))")


def downgrade() -> None:
    if is_postgresql():
        op.execute(f"DROP INDEX IF EXISTS {FTS_INDEX}")
        for dim in HNSW_DIMENSIONS:
            op.execute(f"DROP INDEX IF EXISTS {hnsw_index(dim)}")
    op.drop_index(op.f('ix_document_chunks_owner_id'), table_name='document_chunks')
    op.drop_table('document_chunks')
    op.drop_index(op.f('ix_dataset_documents_document_id'), table_name='dataset_documents')
    op.drop_table('dataset_documents')
    op.drop_table('datasets')
