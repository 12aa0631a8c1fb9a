"""A database session per request, from the process runtime."""
from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from workers import runtime


def get_db() -> Session:
    if "db" not in g:
        g.db = runtime.session()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
