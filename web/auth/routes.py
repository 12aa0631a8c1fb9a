"""/api/v1/auth: register, login, refresh, logout, me."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, g, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token

from models import User
from web.api.described import responds
from web.api.parsing import parse_body, parse_optional_body
from web.auth import tokens
from web.auth.answers import AccessToken, LoggedOut, TokenPair, UserOut
from web.auth.schemas import LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest
from web.auth.serializers import user_view
from web.db import get_db
from web.services import users

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


def token_pair(user: User) -> dict:
    expires: timedelta = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    claims = {"role": user.role, "username": user.username}
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id)),
        "token_type": "bearer",
        "expires_in": int(expires.total_seconds()),
    }


@bp.post("/register")
@responds(201, UserOut, "The new user (sign in with /login)")
def register():
    """Create an account."""
    body = parse_body(RegisterRequest)
    user = users.create_user(get_db(), body.email, body.username, body.password)
    return jsonify(user_view(user)), 201


@bp.post("/login")
@responds(200, TokenPair, "An access token (Bearer) and a refresh token")
def login():
    """Sign in with a username or email and a password."""
    body = parse_body(LoginRequest)
    user = users.check_credentials(get_db(), body.login, body.password)
    return jsonify(token_pair(user))


@bp.post("/refresh")
@responds(200, AccessToken, "A new access token")
def refresh():
    """Exchange a refresh token (Authorization header or body) for a new access token."""
    body = parse_optional_body(RefreshRequest)
    claims = tokens.verify(body.refresh_token or tokens.request_token(), "refresh")
    user = tokens.user_from_claims(claims)
    pair = token_pair(user)
    return jsonify({k: pair[k] for k in ("access_token", "token_type", "expires_in")})


@bp.post("/logout")
@responds(200, LoggedOut, "Both tokens are refused from now on")
@tokens.login_required
def logout():
    """Revoke the access token used here, and the refresh token if one is given."""
    # Check the body first: a logout refused (422, or 401 for its refresh token) revokes nothing.
    body = parse_optional_body(LogoutRequest)
    refresh_claims = tokens.verify(body.refresh_token, "refresh") if body.refresh_token else None
    tokens.revoke(g.claims)
    if refresh_claims is not None:
        tokens.revoke(refresh_claims)
    return jsonify({"detail": "Logged out"})


@bp.get("/me")
@responds(200, UserOut, "The signed-in user")
@tokens.login_required
def me():
    """The signed-in user."""
    return jsonify(user_view(g.user))
