"""Chats made as 002 conversations and 004 sessions are GROUP chats.

001, 002 and 004 have no chat types and share their chats with other members (added through
the chat API), but they were stored DIRECT, the type of two members at most, so a third member
was refused. They are made GROUP since; this changes the ones made before. Only those can be
told apart: chats of the chat API (000) always have a model, those of the chats API (003) have
their AI off. A 001 session (it has a model) cannot be told from a DIRECT chat of 000 and is
left as it is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 21:45:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

chats = sa.table("chats", sa.column("chat_type", sa.String), sa.column("ai_model", sa.String),
                 sa.column("ai_enabled", sa.Boolean))


def upgrade() -> None:
    op.execute(chats.update().where(chats.c.chat_type == "DIRECT", chats.c.ai_model.is_(None),
                                    chats.c.ai_enabled.is_(True)).values(chat_type="GROUP"))


def downgrade() -> None:
    # Left GROUP: which chats were DIRECT is not recorded, and some may have more than two members now.
    pass
