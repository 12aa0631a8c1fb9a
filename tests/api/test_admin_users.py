"""User administration: /api/v1/admin/users lists accounts, PATCH deactivates, reactivates and
changes roles; admins only."""
from __future__ import annotations

import json
import logging
import uuid

import pytest
from sqlalchemy import update

from models import User
from tests.admin.accounts import promote
from tests.conftest import sent_while_writing
from workers.logs import JsonFormatter

USER_FIELDS = {"id", "user_id", "email", "username", "role", "is_active", "created_at"}


@pytest.fixture
def admin(make_user):
    return promote(make_user("admin"))


def patch(api, admin, user_id, **body):
    return api.patch(f"/api/v1/admin/users/{user_id}", json=body, headers=admin.headers)


def listed(api, admin, **params):
    response = api.get("/api/v1/admin/users", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_only_admins_administer_users(api, alice, admin):
    for response in (api.get("/api/v1/admin/users", headers=alice.headers),
                     patch(api, alice, admin["id"], is_active=False)):
        assert response.status_code == 403 and response.json() == {"detail": "Admin access required"}
    assert api.get("/api/v1/admin/users").status_code == 401
    assert api.get("/api/v1/auth/me", headers=admin.headers).json()["is_active"] is True


def test_admins_list_users_paged_and_filtered(api, admin, make_user):
    tag = f"lst{uuid.uuid4().hex[:6]}"
    made = [make_user(f"{tag}_") for _ in range(3)]
    everyone = listed(api, admin)
    assert everyone["limit"] == 50 and everyone["offset"] == 0 and everyone["total_count"] >= 4
    assert all(set(u) == USER_FIELDS for u in everyone["users"])

    found = listed(api, admin, search=tag.upper())  # case-insensitive, on username and email
    assert found["total_count"] == 3 and [u["id"] for u in found["users"]] == [u["id"] for u in made]
    assert listed(api, admin, search=f"{made[1]['username']}@EXAMPLE.com")["users"] == [found["users"][1]]
    page = listed(api, admin, search=tag, limit=2, offset=1)
    assert page["total_count"] == 3 and page["users"] == found["users"][1:] and page["limit"] == 2
    assert listed(api, admin, search=f"{tag}%")["total_count"] == 0  # % and _ are text, not wildcards

    assert patch(api, admin, made[0]["id"], is_active=False).status_code == 200
    inactive = listed(api, admin, search=tag, is_active="false")
    assert [u["id"] for u in inactive["users"]] == [made[0]["id"]] and inactive["users"][0]["is_active"] is False
    assert listed(api, admin, search=tag, is_active="true")["total_count"] == 2


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset"),
    ({"is_active": "perhaps"}, "is_active"), ({"search": "x" * 321}, "search"),
])
def test_bad_list_queries_are_422(api, admin, params, field):
    response = api.get("/api/v1/admin/users", params=params, headers=admin.headers)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", field]


def test_a_deactivated_user_is_refused_everywhere_until_reactivated(api, admin, make_user):
    bob = make_user("bob")
    before = api.get("/api/v1/auth/me", headers=bob.headers).json()
    answer = patch(api, admin, bob["id"], is_active=False)
    assert answer.status_code == 200 and answer.json() == {**before, "is_active": False}
    inactive = {"detail": "User not found or inactive"}
    assert api.get("/api/v1/auth/me", headers=bob.headers).json() == inactive
    refreshed = api.post("/api/v1/auth/refresh", json={"refresh_token": bob["refresh_token"]})
    assert refreshed.status_code == 401 and refreshed.json() == inactive
    assert api.post("/api/v1/auth/login", json={"username": bob["username"], "password": bob["password"]}
                    ).status_code == 401

    again = patch(api, admin, bob["id"].upper(), is_active=True)  # the UUID in any case
    assert again.status_code == 200 and again.json()["is_active"] is True
    assert api.get("/api/v1/auth/me", headers=bob.headers).status_code == 200
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": bob["refresh_token"]}).status_code == 200


def test_admins_change_roles(api, admin, make_user):
    carol = make_user("carol")
    promoted = patch(api, admin, carol["id"], role="admin")
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert api.get("/api/v1/admin/users", headers=carol.headers).status_code == 200
    assert patch(api, admin, carol["id"], role="user", is_active=True).json()["role"] == "user"
    assert api.get("/api/v1/admin/users", headers=carol.headers).status_code == 403


@pytest.mark.parametrize("body, loc", [
    ({}, ["body"]), ({"role": "root"}, ["body", "role"]), ({"is_active": "no"}, ["body", "is_active"]),
    ({"is_active": 0}, ["body", "is_active"]), ({"is_active": None}, ["body", "is_active"]),
    ({"role": None}, ["body", "role"]), ({"colour": "red"}, ["body", "colour"]),
])
def test_bad_changes_are_422(api, admin, alice, body, loc):
    response = patch(api, admin, alice["id"], **body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert api.get("/api/v1/auth/me", headers=alice.headers).json()["role"] == "user"


def test_an_unknown_user_is_404(api, admin):
    for user_id in (str(uuid.uuid4()), admin["user_id"], "nobody"):
        response = patch(api, admin, user_id, is_active=False)
        assert response.status_code == 404 and response.json() == {"detail": "User not found"}


def test_admins_cannot_deactivate_or_demote_themselves(api, admin):
    """Else the last admin could lock everyone out; another admin (or the CLI) can."""
    for body in ({"is_active": False}, {"role": "user"}, {"role": "user", "is_active": True}):
        response = patch(api, admin, admin["id"], **body)
        assert response.status_code == 400, response.text
        assert "your own account" in response.json()["detail"]
    me = api.get("/api/v1/auth/me", headers=admin.headers).json()
    assert me["role"] == "admin" and me["is_active"] is True
    unchanged = patch(api, admin, admin["id"], role="admin", is_active=True)
    assert unchanged.status_code == 200 and unchanged.json() == me


def test_an_admin_demoted_meanwhile_changes_nobody(api, admin, make_user):
    """Two admins demoting each other at once must not leave none: the second to take the
    accounts' locks finds it is no longer an admin."""
    erin = promote(make_user("erin"))
    demote_admin = update(User).where(User.id == admin["user_id"]).values(role="user")
    response = sent_while_writing(demote_admin, lambda: patch(api, admin, erin["id"], role="user"))
    assert response.status_code == 403 and response.json() == {"detail": "Admin access required"}
    assert api.get("/api/v1/auth/me", headers=erin.headers).json()["role"] == "admin"


def test_admin_actions_are_logged(api, admin, make_user, caplog):
    caplog.set_level(logging.INFO)
    dave = make_user("dave")
    assert patch(api, admin, dave["id"], is_active=False, role="admin").status_code == 200
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "web.services.user_admin"]
    assert len(lines) == 1 and lines[0]["level"] == "INFO"
    assert lines[0]["admin"] == admin["username"] and lines[0]["user"] == dave["username"]
    assert lines[0]["changes"] == {"is_active": [True, False], "role": ["user", "admin"]}
    assert admin["username"] in lines[0]["msg"] and dave["username"] in lines[0]["msg"]


def test_a_reactivation_racing_a_deactivation_leaves_the_marker_as_the_database(api, make_user, server,
                                                                                monkeypatch):
    """Admin A deactivates, admin B reactivates meanwhile: the marker that ends open sockets must end
    as the database does. It was written after A's commit, outside the row lock, so B could commit
    and clear it in between and A then set it: an active user whose sockets kept closing."""
    import threading
    import time

    import httpx

    from web.auth import tokens
    from web.services import user_admin
    from workers import runtime

    first, second, victim = promote(make_user("admin")), promote(make_user("admin")), make_user("victim")
    writing, real = threading.Event(), tokens.mark_deactivated

    def slow_deactivation(redis, user_id, deactivated):
        if deactivated:  # A is descheduled while it writes its marker: B's reactivation runs now
            writing.set()
            time.sleep(1.0)
        real(redis, user_id, deactivated)

    monkeypatch.setattr(user_admin.tokens, "mark_deactivated", slow_deactivation)

    def deactivate():
        with httpx.Client(base_url=server, timeout=20) as client:
            assert patch(client, first, victim["id"], is_active=False).status_code == 200

    thread = threading.Thread(target=deactivate)
    thread.start()
    assert writing.wait(10)
    assert patch(api, second, victim["id"], is_active=True).status_code == 200
    thread.join()
    assert api.get("/api/v1/auth/me", headers=victim.headers).json()["is_active"] is True
    assert runtime.current().redis.get(tokens.deactivated_key(victim["user_id"])) is None
