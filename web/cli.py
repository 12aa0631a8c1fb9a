"""Flask CLI commands: `flask --app web db upgrade`, `flask --app web create-user`."""
from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.engine import Engine

from workers import runtime

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def register_commands(app: Flask) -> None:
    db_group = AppGroup("db", help="Database migrations (Alembic).")

    @db_group.command("upgrade")
    @click.argument("revision", default="head")
    def upgrade(revision: str) -> None:
        """Migrate the database to REVISION (default: head)."""
        upgrade_database(runtime.current().engine, revision)
        click.echo(f"database at {revision}")

    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--username", required=True)
    @click.option("--password", required=True)
    @click.option("--admin", is_flag=True, help="give the user the admin role")
    def create_user(email: str, username: str, password: str, admin: bool) -> None:
        """Create a user (optionally an admin)."""
        from pydantic import ValidationError

        from web.auth.schemas import RegisterRequest
        from web.errors import ApiError
        from web.services.users import create_user as create

        try:  # what registration refuses: else an account nobody can sign in with, or a database traceback
            body = RegisterRequest(email=email, username=username, password=password)
        except ValidationError as exc:
            raise click.UsageError("; ".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                             for e in exc.errors())) from None
        with runtime.session() as db:
            try:
                user = create(db, body.email, body.username, body.password, role="admin" if admin else "user")
            except ApiError as exc:
                raise click.ClickException(str(exc.detail)) from None
            click.echo(f"created {user.role} {user.username} ({user.uuid})")

    app.cli.add_command(db_group)
