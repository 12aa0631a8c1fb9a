"""The Flask CLI entry points and keeping tokens out of logs."""
from __future__ import annotations

import logging

from web.logging_filters import TokenRedactingFilter, redact
from workers import runtime


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


def test_set_user_command(app, api, make_user, make_chat, connect, monkeypatch, caplog):
    """Operators without the API deactivate, reactivate and re-role a user by username or email,
    as an admin does over /api/v1/admin/users: their open sockets close too, and the change is logged."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(runtime.current().settings, "ws_token_check_s", 0.2)
    bob = make_user("bob")
    ws = connect(make_chat(bob)["id"], bob["access_token"])
    assert ws.next()["type"] == "welcome"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["set-user", bob["email"].upper(), "--inactive", "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{bob['username']} ({bob['id']}): inactive, role admin\n"
    assert api.get("/api/v1/auth/me", headers=bob.headers).status_code == 401
    logged = [r for r in caplog.records if r.name == "web.services.user_admin"]
    assert [(r.admin, r.user, r.changes) for r in logged] == [
        ("an operator (flask set-user)", bob["username"], {"is_active": [True, False], "role": ["user", "admin"]})]
    ws.ws.settimeout(5)
    assert ws.ws.recv_data()[1][2:] == b"Account deactivated"

    assert runner.invoke(args=["set-user", f" {bob['username']} ", "--active"]).exit_code == 0
    me = api.get("/api/v1/auth/me", headers=bob.headers).json()
    assert me["is_active"] is True and me["role"] == "admin"


def test_set_user_command_refuses_what_it_cannot_do(app, make_user):
    bob = make_user("bob")
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["set-user", "nobody-at-all", "--inactive"])
    assert unknown.exit_code == 1 and "No user has the username or email nobody-at-all" in unknown.output
    for args in ([bob["username"]], [bob["username"], "--role", "root"]):
        refused = runner.invoke(args=["set-user", *args])
        assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output


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
