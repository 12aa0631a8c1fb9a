"""/api/v1/auth: register, login, refresh, logout, me."""
from __future__ import annotations

import uuid

from flask_jwt_extended import create_access_token


def register(api, **overrides):
    name = f"u{uuid.uuid4().hex[:8]}"
    body = {"email": f"{name}@example.com", "username": name, "password": "long enough password", **overrides}
    return api.post("/api/v1/auth/register", json=body), body


def test_register_returns_user_without_hash(api):
    response, body = register(api)
    assert response.status_code == 201
    user = response.json()
    assert user["email"] == body["email"] and user["username"] == body["username"] and user["role"] == "user"
    assert not any("password" in key or "hash" in key for key in user)


def test_register_conflicts_and_validation(api):
    first, body = register(api)
    again, _ = register(api, email=body["email"].upper())
    assert again.status_code == 409 and "email" in again.json()["detail"]
    same_name, _ = register(api, username=body["username"])
    assert same_name.status_code == 409 and "username" in same_name.json()["detail"]
    bad, _ = register(api, email="nope", password="short")
    assert bad.status_code == 422
    locs = {tuple(d["loc"]) for d in bad.json()["detail"]}
    assert ("body", "email") in locs and ("body", "password") in locs
    not_json = api.post("/api/v1/auth/register", content="x", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 422


def test_a_password_is_taken_as_typed(api):
    """Spaces around a password are part of it: registering must not trim what login compares as typed,
    or the new account cannot sign in."""
    _, body = register(api, username=f"  u{uuid.uuid4().hex[:8]}  ", password="  spaced password  ")
    login = api.post("/api/v1/auth/login", json={"username": body["username"], "password": body["password"]})
    assert login.status_code == 200, login.text
    trimmed = api.post("/api/v1/auth/login", json={"username": body["username"], "password": "spaced password"})
    assert trimmed.status_code == 401
    short, _ = register(api, password="  7chars  ")  # 11 characters as typed: long enough
    assert short.status_code == 201, short.text


def test_login_with_username_or_email(api):
    _, body = register(api)
    by_name = api.post("/api/v1/auth/login", json={"username": body["username"], "password": body["password"]})
    by_mail = api.post("/api/v1/auth/login", json={"email": body["email"], "password": body["password"]})
    for response in (by_name, by_mail):
        assert response.status_code == 200
        tokens = response.json()
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
        assert tokens["access_token"] and tokens["refresh_token"]
    wrong = api.post("/api/v1/auth/login", json={"username": body["username"], "password": "wrong password"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Incorrect username or password"
    nobody = api.post("/api/v1/auth/login", json={"username": "nobody-here", "password": "x"})
    assert nobody.status_code == 401
    assert api.post("/api/v1/auth/login", json={"password": "x"}).status_code == 422


def test_me_refresh_logout(api, alice):
    me = api.get("/api/v1/auth/me", headers=alice.headers)
    assert me.status_code == 200 and me.json()["id"] == alice["id"]
    refreshed = api.post("/api/v1/auth/refresh", json={"refresh_token": alice["refresh_token"]})
    assert refreshed.status_code == 200
    new_access = refreshed.json()["access_token"]
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new_access}"}).status_code == 200
    # an access token is not a refresh token, and vice versa
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": alice["access_token"]}).status_code == 401
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {alice['refresh_token']}"}).status_code == 401

    out = api.post("/api/v1/auth/logout", json={"refresh_token": alice["refresh_token"]}, headers=alice.headers)
    assert out.status_code == 200
    revoked = api.get("/api/v1/auth/me", headers=alice.headers)
    assert revoked.status_code == 401 and revoked.json()["detail"] == "Token has been revoked"
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": alice["refresh_token"]}).status_code == 401


def test_missing_and_expired_tokens(api, app, alice):
    missing = api.get("/api/v1/chat/chats")
    assert missing.status_code == 401 and missing.json()["detail"] == "Not authenticated"
    with app.app_context():
        from datetime import timedelta

        expired = create_access_token(identity=str(alice["user_id"]), expires_delta=timedelta(seconds=-10))
    response = api.get("/api/v1/chat/chats", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["detail"] == "Token has expired"


def test_a_refused_logout_revokes_nothing(api, alice):
    """A logout answered 401 or 422 (a bad refresh token or body) has not happened: the access token still works."""
    for body in ({"refresh_token": "not a token"}, {"refresh_token": alice["access_token"]}, {"colour": "red"}):
        refused = api.post("/api/v1/auth/logout", json=body, headers=alice.headers)
        assert refused.status_code in (401, 422), body
        assert api.get("/api/v1/auth/me", headers=alice.headers).status_code == 200, body
    wrong_kind = api.post("/api/v1/auth/refresh", json={"refresh_token": alice["access_token"]})
    assert wrong_kind.json()["detail"] == "A refresh token is required"
    out = api.post("/api/v1/auth/logout", json={"refresh_token": alice["refresh_token"]}, headers=alice.headers)
    assert out.status_code == 200
    assert api.get("/api/v1/auth/me", headers=alice.headers).status_code == 401


def test_a_changed_password_hash_applies_to_new_passwords_and_old_ones_still_log_in(api, settings, monkeypatch):
    from sqlalchemy import select

    from models import User
    from workers import runtime

    def stored_hash(username):
        with runtime.session() as db:
            return db.scalar(select(User.password_hash).where(User.username == username))

    _, before = register(api)
    monkeypatch.setattr(settings, "password_hash", "pbkdf2:sha256:1000")
    _, after = register(api)
    assert stored_hash(before["username"]).startswith("scrypt:1024:8:1$")
    assert stored_hash(after["username"]).startswith("pbkdf2:sha256:1000$")
    for body in (before, after):
        login = api.post("/api/v1/auth/login", json={"username": body["username"], "password": body["password"]})
        assert login.status_code == 200, login.text
    wrong = api.post("/api/v1/auth/login", json={"username": "nobody-" + uuid.uuid4().hex, "password": "x" * 12})
    assert wrong.status_code == 401
