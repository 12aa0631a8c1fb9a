"""SQLite: ids of deleted rows are never given again (AUTOINCREMENT).

Without AUTOINCREMENT, SQLite gives a new row the largest id plus one, so deleting the newest
chat, message, agent, prompt or document handed its id to the next one made, by any user: a
reply still streaming into a deleted chat reached the next chat's socket, and analytics
credited a deleted agent's replies to the next agent. PostgreSQL's sequences never reuse
ids; this revision changes nothing there.

SQLite cannot add AUTOINCREMENT to a table, so each table is rebuilt (Alembic's batch mode),
with foreign keys off (migrations/env.py) so that dropping the old table deletes nothing, and
the table's triggers (message search) are created again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 14:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TABLES = ("agents", "chats", "messages", "prompts", "documents")


def rebuild(table: str, autoincrement: bool) -> None:
    bind = op.get_bind()
    triggers = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                            {"t": table}).scalars().all()
    with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass
    for sql in triggers:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            rebuild(table, autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            rebuild(table, autoincrement=False)
