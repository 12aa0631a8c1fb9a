"""Committing changes to a row that another request may delete meanwhile."""
from __future__ import annotations

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
