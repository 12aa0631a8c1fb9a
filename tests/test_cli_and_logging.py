"""The Flask CLI entry points and keeping tokens out of logs."""
from __future__ import annotations

import logging

from web.logging_filters import TokenRedactingFilter, redact


def test_create_user_command(app, api):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "--email", "root@example.com", "--username", "rootadmin",
                                 "--password", "a long password", "--admin"])
    assert result.exit_code == 0, result.output
    assert "created admin rootadmin" in result.output
    again = runner.invoke(args=["create-user", "--email", "root@example.com", "--username", "other",
                                "--password", "a long password"])
    assert again.exit_code != 0 and "already exists" in again.output
    login = api.post("/api/v1/auth/login", json={"username": "rootadmin", "password": "a long password"})
    me = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["role"] == "admin"


def test_create_user_command_refuses_what_registration_refuses(app, api):
    """An operator's typo must not make an account nobody can sign in with (or a traceback)."""
    runner = app.test_cli_runner()
    for email, username, password, field in [
        ("not-an-email", "opsuser", "a long password", "email"),
        ("ops@example.com", "ops user", "a long password", "username"),
        ("ops@example.com", "u" * 51, "a long password", "username"),
        ("ops@example.com", "opsuser", "", "password"),
    ]:
        result = runner.invoke(args=["create-user", "--email", email, "--username", username,
                                     "--password", password])
        assert result.exit_code == 2, result.output
        assert field in result.output and "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    login = api.post("/api/v1/auth/login", json={"username": "opsuser", "password": "a long password"})
    assert login.status_code == 401


def test_db_upgrade_command(app):
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at head" in result.output


def test_tokens_are_redacted_from_request_logs():
    line = 'GET /api/v1/chat/chats/x/ws?token=eyJhbGciOi.abc.def&last_event_id=1-0 HTTP/1.1'
    assert "eyJ" not in redact(line) and "last_event_id=1-0" in redact(line)
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s', (
        "GET /stream?auth_token=secret.token.value HTTP/1.1", 200), None)
    TokenRedactingFilter().filter(record)
    assert "secret" not in record.getMessage()
    access = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s", (), None)
    access.args = {"r": "GET /x?token=abc.def HTTP/1.1"}
    TokenRedactingFilter().filter(access)
    assert "abc.def" not in access.getMessage()
