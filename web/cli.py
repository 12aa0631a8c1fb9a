"""Flask CLI commands: `flask --app web db upgrade`, `create-user` and `set-user`."""
from __future__ import annotations

import logging
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.engine import Engine

from models.user import ROLES
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

    @app.cli.command("set-user")
    @click.argument("login")
    @click.option("--active/--inactive", default=None, help="reactivate or deactivate the account")
    @click.option("--role", type=click.Choice(ROLES), help="give the user this role")
    def set_user(login: str, active: bool | None, role: str | None) -> None:
        """Reactivate or deactivate the user LOGIN (a username or email), or change their role,
        as an admin does with PATCH /api/v1/admin/users/{id}."""
        from web.services.user_admin import change_user
        from web.services.users import find_by_login
        from workers.logs import configure_json_logging

        if active is None and role is None:
            raise click.UsageError("give --active, --inactive or --role")
        if not logging.getLogger().handlers:  # the change's log line on stderr, unless the caller set up logging
            configure_json_logging()
        with runtime.session() as db:
            user = find_by_login(db, login)
            if user is None:
                raise click.ClickException(f"No user has the username or email {login.strip()}")
            change_user(db, runtime.current().redis, user, active, role)
            click.echo(f"{user.username} ({user.uuid}): {'active' if user.is_active else 'inactive'}, role {user.role}")

    app.cli.add_command(db_group)
