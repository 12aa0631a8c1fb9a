"""Committing changes to, or deleting, a row that another request may delete meanwhile."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from web.errors import NotFound


def commit_change(db: Session, missing: str) -> None:
    """Commit the ORM changes to a row read earlier; 404 `missing` (rolled back) when the row was
    deleted since, as for one deleted before, instead of SQLAlchemy's StaleDataError (a 500)."""
    try:
        db.commit()
    except StaleDataError:
        db.rollback()
        raise NotFound(missing) from None


def delete_row(db: Session, row: Any, missing: str) -> None:
    """Delete a row read earlier and commit; 404 `missing` (rolled back) when another request
    deleted it since, as for one deleted before (the ORM's delete only warns and succeeds)."""
    table = type(row)
    done = db.execute(delete(table).where(table.id == row.id))
    if done.rowcount != 1:
        db.rollback()
        raise NotFound(missing)
    db.commit()
