"""Fixtures of the API tests: the access-matrix world, built once for the modules that share it."""
from __future__ import annotations

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
