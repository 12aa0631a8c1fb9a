"""The schema changes only through Alembic: one head, and models match the migrated schema."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from models import Base
from web.cli import alembic_config
from workers import runtime


def test_one_head(app):
    script = ScriptDirectory.from_config(alembic_config(runtime.current().engine))
    assert len(script.get_heads()) == 1


def test_models_match_migrated_schema(app):
    with runtime.current().engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
