"""Alembic environment: the engine comes from the app runtime (or DATABASE_URL)."""
from __future__ import annotations

from alembic import context

from models import Base


def engine():
    given = context.config.attributes.get("engine")
    if given is not None:
        return given
    from models.base import make_engine
    from workers.settings import Settings

    return make_engine(Settings().resolved_database_url())


def run_migrations_online() -> None:
    with engine().connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
