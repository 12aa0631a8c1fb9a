"""The schema changes only through Alembic: one head, and models match the migrated schema."""
from __future__ import annotations

import hashlib
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from sqlalchemy import column, func, insert, select, table, text

from models import Base, Chat, Document, Message, User
from models.base import UTCDateTime, make_engine, make_sessionmaker, utcnow
from web.cli import alembic_config, upgrade_database
from workers import runtime

# Message search lives only in the migrations (0005): SQLite's FTS5 table and its shadow
# tables, PostgreSQL's expression GIN index. Nothing else may exist without a model.
# Chunk search (0006, 0008) likewise: PostgreSQL's partial HNSW, full-text and unspaced-script
# expression indexes.
SEARCH_OBJECTS = ("messages_fts", "ix_messages_content_fts", "ix_document_chunks_hnsw_",
                  "ix_document_chunks_content_fts", "ix_document_chunks_unspaced_terms")


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


def test_sqlite_ids_of_deleted_rows_are_not_reused_and_upgrading_keeps_the_data(tmp_path):
    """0007 rebuilds SQLite tables with AUTOINCREMENT: rows, children and message search survive it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade_database(engine, "0006")
    with make_sessionmaker(engine)() as db:
        user = User(email="a@example.com", username="a", password_hash="x")
        db.add(user)
        db.flush()
        chats = [Chat(owner_id=user.id, title=f"chat {i}") for i in range(2)]
        db.add_all(chats)
        db.flush()
        db.add_all([Message(chat_id=chat.id, content=f"zebra {chat.title}") for chat in chats])
        db.commit()
        newest = chats[1].id
    upgrade_database(engine)
    with make_sessionmaker(engine)() as db:
        assert db.scalar(select(func.count()).select_from(Message)) == 2  # dropping the old tables deleted nothing
        assert db.execute(text("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'zebra'")).scalar() == 2
        db.delete(db.get(Chat, newest))
        db.commit()
        assert db.scalar(select(func.count()).select_from(Message)) == 1  # foreign keys are on again: cascaded
        again = Chat(owner_id=db.scalar(select(User.id)), title="next")
        db.add(again)
        db.flush()
        db.add(Message(chat_id=again.id, content="zebra again"))
        db.commit()
        assert again.id > newest
        assert db.execute(text("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'zebra'")).scalar() == 2
    engine.dispose()


def test_0010_makes_conversations_and_rag_sessions_group_chats(app):
    """Chats stored DIRECT by 002 and 004 (no model of their own, AI on) become GROUP; the DIRECT
    chats of 000 (a model) and PERSONAL ones of 003 (AI off) stay DIRECT."""
    engine = runtime.current().engine
    command.downgrade(alembic_config(engine), "0009")
    try:
        with make_sessionmaker(engine)() as db:
            user = User(email="migrated@example.com", username="migrated", password_hash="x")
            db.add(user)
            db.flush()
            made = {"002/004": Chat(owner_id=user.id, title="untyped"),
                    "000": Chat(owner_id=user.id, title="000", ai_model="gpt-4"),
                    "003": Chat(owner_id=user.id, title="003", ai_enabled=False),
                    "channel": Chat(owner_id=user.id, title="channel", chat_type="CHANNEL")}
            db.add_all(made.values())
            db.commit()
            ids = {name: chat.id for name, chat in made.items()}
    finally:
        upgrade_database(engine)
    with make_sessionmaker(engine)() as db:
        types = {name: db.get(Chat, chat_id).chat_type for name, chat_id in ids.items()}
        db.delete(db.get(User, user.id))
        db.commit()
    assert types == {"002/004": "GROUP", "000": "DIRECT", "003": "DIRECT", "channel": "CHANNEL"}


def test_0011_fills_in_the_content_hash_of_stored_documents(app):
    """Documents stored before 0011 get the SHA-256 of their bytes, so an upload of the same file finds them."""
    engine = runtime.current().engine
    command.downgrade(alembic_config(engine), "0010")
    stored = {"pdf": b"%PDF-1.4 stored before", "text": "notes before, ünïcode".encode(), "none": None}
    documents = table("documents", column("uuid"), column("owner_id"), column("filename"), column("mime_type"),
                      column("file_size"), column("data"), column("status"), column("created_at", UTCDateTime),
                      column("updated_at", UTCDateTime))
    try:
        with make_sessionmaker(engine)() as db:
            user = User(email="hashed@example.com", username="hashed", password_hash="x")
            db.add(user)
            db.flush()
            for name, data in stored.items():
                db.execute(insert(documents).values(uuid=str(uuid.uuid4()), owner_id=user.id, filename=name,
                                                    mime_type="text/plain", file_size=len(data or b""), data=data,
                                                    status="READY", created_at=utcnow(), updated_at=utcnow()))
            db.commit()
    finally:
        upgrade_database(engine)
    with make_sessionmaker(engine)() as db:
        hashes = dict(db.execute(select(Document.filename, Document.content_hash)
                                 .where(Document.owner_id == user.id)).all())
        db.delete(db.get(User, user.id))
        db.commit()
    assert hashes == {name: data and hashlib.sha256(data).hexdigest() for name, data in stored.items()}
