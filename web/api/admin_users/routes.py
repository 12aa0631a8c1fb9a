"""GET /api/v1/admin/users and PATCH /api/v1/admin/users/{user_id}: admins list accounts,
deactivate or reactivate them and change their role."""
from __future__ import annotations

from flask import g, jsonify

from web.api.admin_users import bp
from web.api.admin_users.answers import UserList
from web.api.admin_users.schemas import ListUsersQuery, UserChange
from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.auth.answers import UserOut
from web.auth.serializers import user_view
from web.auth.tokens import login_required
from web.db import get_db
from web.redis_client import get_redis
from web.services import user_admin, users


@bp.get("/users")
@responds(200, UserList, "A page of the users, oldest account first, and how many match")
@login_required
def list_users():
    """List the users (admins only), optionally those matching `search` or `is_active`."""
    users.require_admin(g.user)
    query = parse_query(ListUsersQuery)
    found, total = user_admin.list_users(get_db(), query.search, query.is_active, query.limit, query.offset)
    return jsonify({"users": [user_view(u) for u in found], "total_count": total,
                    "limit": query.limit, "offset": query.offset})


@bp.patch("/users/<user_id>")
@responds(200, UserOut, "The user as changed")
@login_required
def update_user(user_id: str):
    """Deactivate or reactivate a user, or change their role (admins only; not their own account's)."""
    users.require_admin(g.user)
    body = parse_body(UserChange)
    db = get_db()
    user = user_admin.change_user(db, get_redis(), user_admin.find_user(db, user_id), body.is_active, body.role,
                                  admin=g.user)
    return jsonify(user_view(user))
