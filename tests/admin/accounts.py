"""Admin accounts and admin browser sessions for the tests."""
from __future__ import annotations

import httpx
from sqlalchemy import update

from models import User
from workers import runtime


def promote(account: dict) -> dict:
    """Make a registered test account an admin (what `flask create-user --admin` does)."""
    with runtime.session() as db:
        db.execute(update(User).where(User.id == account["user_id"]).values(role="admin"))
        db.commit()
    return account


def set_active(api: httpx.Client, admin: dict, account: dict, active: bool) -> None:
    """Deactivate or reactivate `account` through the admin API, as `admin`."""
    response = api.patch(f"/api/v1/admin/users/{account['id']}", json={"is_active": active},
                         headers={"Authorization": f"Bearer {admin['access_token']}"})
    assert response.status_code == 200, response.text


def sign_in(server: str, account: dict) -> httpx.Client:
    """A client holding the admin session cookies from the login form."""
    client = httpx.Client(base_url=server, timeout=10.0)
    response = client.post("/admin/login", data={"username": account["username"], "password": account["password"],
                                                 "next": "/admin/rq/"})
    assert response.status_code == 303, response.text
    return client
