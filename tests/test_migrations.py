"""The schema changes only through Alembic: one head, and models match the migrated schema."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from models import Base
from web.cli import alembic_config
from workers import runtime

# Message search lives only in the migrations (0005): SQLite's FTS5 table and its shadow
# tables, PostgreSQL's expression GIN index. Nothing else may exist without a model.
# Chunk search (0006) likewise: PostgreSQL's partial HNSW and full-text expression indexes.
SEARCH_OBJECTS = ("messages_fts", "ix_messages_content_fts",
                  "ix_document_chunks_hnsw_", "ix_document_chunks_content_fts")


def models_only(obj, name, type_, reflected, compare_to) -> bool:
    return not (reflected and compare_to is None and (name or "").startswith(SEARCH_OBJECTS))


def test_one_head(app):
    script = ScriptDirectory.from_config(alembic_config(runtime.current().engine))
    assert len(script.get_heads()) == 1


def test_models_match_migrated_schema(app):
    with runtime.current().engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                        "include_object": models_only})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
