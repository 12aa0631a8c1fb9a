"""Agents (chats.agent_id), chat session history, message attachments and message search.

Search: a GIN index on to_tsvector('english', content) on PostgreSQL; on SQLite an FTS5
table (porter stemming) kept in step with `messages` by triggers.

SQLite cannot add a foreign key to an existing table, so `chats` is rebuilt (batch mode).
With foreign keys enforced, dropping the old `chats` would delete every message and
participant through their ON DELETE CASCADE, so enforcement is switched off around the
rebuild, outside any transaction (the pragma is ignored inside one), as SQLite's
documented table-rebuild procedure does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

FTS_TABLE = "messages_fts"
FTS_TRIGGERS = {
    "messages_fts_insert": "AFTER INSERT ON messages BEGIN "
                           "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "messages_fts_delete": "AFTER DELETE ON messages BEGIN "
                           "INSERT INTO messages_fts(messages_fts, rowid, content) "
                           "VALUES ('delete', old.id, old.content); END",
    "messages_fts_update": "AFTER UPDATE OF content ON messages BEGIN "
                           "INSERT INTO messages_fts(messages_fts, rowid, content) "
                           "VALUES ('delete', old.id, old.content); "
                           "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
}
PG_SEARCH_INDEX = "ix_messages_content_fts"


def is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table('agents',
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('model', sa.String(length=100), nullable=True),
    sa.Column('system_prompt', sa.Text(), nullable=True),
    sa.Column('temperature', sa.Float(), nullable=False),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_agents_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('uuid', name=op.f('uq_agents_uuid'))
    )
    op.create_index(op.f('ix_agents_owner_id'), 'agents', ['owner_id'], unique=False)

    op.create_table('chat_session_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.Integer(), nullable=False),
    sa.Column('session_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('session_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('messages_count', sa.Integer(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['chats.id'], name=op.f('fk_chat_session_history_chat_id_chats'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_session_history'))
    )
    op.create_index(op.f('ix_chat_session_history_chat_id'), 'chat_session_history', ['chat_id'], unique=False)

    op.create_table('message_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('file_type', sa.String(length=100), nullable=True),
    sa.Column('file_size', sa.Integer(), nullable=True),
    sa.Column('file_path', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_attachments_message_id_messages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_attachments'))
    )
    op.create_index(op.f('ix_message_attachments_message_id'), 'message_attachments', ['message_id'], unique=False)

    with foreign_keys_off():
        with op.batch_alter_table('chats', schema=None) as batch_op:
            batch_op.add_column(sa.Column('agent_id', sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f('ix_chats_agent_id'), ['agent_id'], unique=False)
            batch_op.create_foreign_key(batch_op.f('fk_chats_agent_id_agents'), 'agents', ['agent_id'], ['id'],
                                        ondelete='SET NULL')

    if is_sqlite():
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(content, content='messages', "
                   "content_rowid='id', tokenize='porter unicode61')")
        for name, body in FTS_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        op.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    else:
        op.execute(f"CREATE INDEX {PG_SEARCH_INDEX} ON messages "
                   "USING gin (to_tsvector('english'::regconfig, content))")


def downgrade() -> None:
    if is_sqlite():
        for name in FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    else:
        op.execute(f"DROP INDEX IF EXISTS {PG_SEARCH_INDEX}")

    with foreign_keys_off():
        with op.batch_alter_table('chats', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('fk_chats_agent_id_agents'), type_='foreignkey')
            batch_op.drop_index(batch_op.f('ix_chats_agent_id'))
            batch_op.drop_column('agent_id')

    op.drop_index(op.f('ix_message_attachments_message_id'), table_name='message_attachments')
    op.drop_table('message_attachments')
    op.drop_index(op.f('ix_chat_session_history_chat_id'), table_name='chat_session_history')
    op.drop_table('chat_session_history')
    op.drop_index(op.f('ix_agents_owner_id'), table_name='agents')
    op.drop_table('agents')


class foreign_keys_off:
    """On SQLite, rebuild a parent table without its children's ON DELETE actions firing."""

    def __enter__(self) -> None:
        self.sqlite = is_sqlite()
        if self.sqlite:
            set_foreign_keys("OFF")

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.sqlite:
            problems = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            set_foreign_keys("ON")
            if exc_type is None and problems:
                raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")


def set_foreign_keys(state: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={state}")
