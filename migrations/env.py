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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # a table rebuilt in batch mode is dropped: with foreign keys on, that deletes its children
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # SQLAlchemy began a transaction around it; Alembic begins its own
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=sqlite, compare_type=True)
        try:
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


run_migrations_online()
