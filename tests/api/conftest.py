"""Fixtures of the API tests: the access-matrix world, built once for the modules that share it;
sessions (001) shared with other participants."""
from __future__ import annotations

import uuid
from typing import Callable

import httpx
import pytest

from tests.api import access_resources
from tests.api.access_resources import World, create_everything, register
from tests.conftest import reset_upstream


@pytest.fixture(scope="session")
def access_world(server: str, fake_upstream) -> World:
    """Owner A with one resource of every kind, and an intruder B (see tests/api/access_resources.py).

    Made before the first test that uses it resets the upstream, so it resets it itself.
    """
    reset_upstream(fake_upstream)
    with httpx.Client(base_url=server, timeout=30.0) as client:
        owner = register(client, "owner")
        owned = create_everything(client, owner, fake_upstream)
        reset_upstream(fake_upstream)
        yield World(client, owned, register(client, "intruder"))


@pytest.fixture(scope="session")
def bad_tokens(app, access_world: World) -> dict[str, str | None]:
    """The owner's tokens that must open nothing: none, malformed, forged, expired, revoked, refresh."""
    return access_resources.bad_tokens(app, access_world)


@pytest.fixture
def share_session(api: httpx.Client, make_chat) -> Callable[..., int]:
    """A new session of `owner` (model gpt-3.5-turbo, temperature 0.7) with each of `members`
    added through 000's participants API with the given rights; returns the session's id."""
    def share(owner, *members, **rights) -> int:
        chat = make_chat(owner, title=f"shared {uuid.uuid4().hex[:8]}", ai_model="gpt-3.5-turbo")
        for member in members:
            added = api.post(f"/api/v1/chat/chats/{chat['id']}/participants",
                             json={"user_id": member["id"], **rights}, headers=owner.headers)
            assert added.status_code == 201, added.text
        sessions = api.get("/v1/chat/history", headers=owner.headers).json()["sessions"]
        return next(s["id"] for s in sessions if s["title"] == chat["title"])

    return share
