"""A user's own upstream key: /api/v1/users/me/api-keys/openai, stored encrypted, never shown."""
from __future__ import annotations

import logging
import uuid
import zlib
from datetime import datetime

import pytest
from redis import Redis
from sqlalchemy import select

from models import UserApiKey
from tests.conftest import sent_while_deleting, wait_for
from workers import runtime
from workers.secrets import DEV_SECRET, UnreadableSecret, decrypt, encrypt, settings_secret
from workers.settings import Settings
from workers.user_keys import key_for_user

URL = "/api/v1/users/me/api-keys/openai"
VIEW_FIELDS = {"provider", "is_set", "last4", "base_url", "updated_at"}


def new_key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def stored_row(user_id: int) -> UserApiKey | None:
    with runtime.session() as db:
        return db.scalar(select(UserApiKey).where(UserApiKey.user_id == user_id))


def test_set_get_replace_delete(api, alice):
    empty = api.get(URL, headers=alice.headers)
    assert empty.status_code == 200
    assert empty.json() == {"provider": "openai", "is_set": False, "last4": None, "base_url": None,
                            "updated_at": None}

    first = new_key()
    put = api.put(URL, json={"api_key": first}, headers=alice.headers)
    assert put.status_code == 200, put.text
    view = put.json()
    assert set(view) == VIEW_FIELDS and view["provider"] == "openai" and view["is_set"] is True
    assert view["last4"] == first[-4:] and view["base_url"] is None and view["updated_at"].endswith("Z")
    assert api.get(URL, headers=alice.headers).json() == view

    second = new_key()
    replaced = api.put(URL, json={"api_key": second, "base_url": "https://llm.example.com/v1"},
                       headers=alice.headers).json()
    assert replaced["last4"] == second[-4:] and replaced["base_url"] == "https://llm.example.com/v1"
    assert datetime.fromisoformat(replaced["updated_at"]) >= datetime.fromisoformat(view["updated_at"])
    assert api.get(URL, headers=alice.headers).json() == replaced

    # A PUT replaces the whole setting: leaving out base_url clears it.
    assert api.put(URL, json={"api_key": second}, headers=alice.headers).json()["base_url"] is None

    deleted = api.delete(URL, headers=alice.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert api.get(URL, headers=alice.headers).json()["is_set"] is False
    again = api.delete(URL, headers=alice.headers)
    assert again.status_code == 404 and again.json() == {"detail": "No API key is set"}


def test_validation(api, alice):
    cases = [
        ({}, "api_key"), ({"api_key": None}, "api_key"), ({"api_key": 12345678}, "api_key"),
        ({"api_key": "short"}, "api_key"), ({"api_key": "k" * 501}, "api_key"),
        ({"api_key": "sk-with space-123"}, "api_key"), ({"api_key": "sk-trailing-newline\n"}, "api_key"),
        ({"api_key": new_key(), "base_url": "ftp://files.example.com"}, "base_url"),
        ({"api_key": new_key(), "base_url": "not a url"}, "base_url"),
        ({"api_key": new_key(), "base_url": "https://"}, "base_url"),
        ({"api_key": new_key(), "base_url": "https://example.com/" + "a" * 490}, "base_url"),
        ({"api_key": new_key(), "base_url": "https://proxy:s3cret@example.com/v1"}, "base_url"),
    ]
    for body, field in cases:
        response = api.put(URL, json=body, headers=alice.headers)
        assert response.status_code == 422, body
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", field] and detail[0]["msg"] and detail[0]["type"], body
    not_object = api.put(URL, json=[new_key()], headers=alice.headers)
    assert not_object.status_code == 422 and not_object.json()["detail"][0]["loc"] == ["body"]
    assert api.get(URL, headers=alice.headers).json()["is_set"] is False


def test_requires_login(api):
    for method in ("GET", "PUT", "DELETE"):
        response = api.request(method, URL, json={"api_key": new_key()})
        assert response.status_code == 401, method
        assert response.json() == {"detail": "Not authenticated"}
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_other_users_do_not_see_or_remove_it(api, alice, make_user):
    bob = make_user("bob")
    key = new_key()
    api.put(URL, json={"api_key": key}, headers=alice.headers)
    assert api.get(URL, headers=bob.headers).json()["is_set"] is False
    assert api.delete(URL, headers=bob.headers).status_code == 404
    assert api.get(URL, headers=alice.headers).json()["last4"] == key[-4:]


def test_stored_encrypted_and_readable_by_workers(api, alice, settings):
    key = new_key()
    api.put(URL, json={"api_key": key, "base_url": "http://127.0.0.1:9/v1"}, headers=alice.headers)
    row = stored_row(alice["user_id"])
    assert row is not None and row.provider == "openai" and row.last4 == key[-4:]
    assert key not in row.encrypted_key and key[8:] not in row.encrypted_key
    assert decrypt(settings_secret(settings), row.encrypted_key) == key
    with pytest.raises(UnreadableSecret):
        decrypt("another-secret-" + "x" * 32, row.encrypted_key)
    with runtime.session() as db:
        assert key_for_user(db, settings, alice["user_id"]) == (key, "http://127.0.0.1:9/v1")
        assert key_for_user(db, settings, alice["user_id"], provider="anthropic") is None
        assert key_for_user(db, settings.model_copy(update={"secret_key": "rotated-" + "y" * 32}),
                            alice["user_id"]) is None


def test_encryption_round_trip_is_authenticated():
    secret = "s" * 40
    token = encrypt(secret, "sk-plain-text-key")
    assert decrypt(secret, token) == "sk-plain-text-key"
    assert encrypt(secret, "sk-plain-text-key") != token  # a fresh IV each time
    with pytest.raises(UnreadableSecret):
        decrypt("S" * 40, token)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(UnreadableSecret):
        decrypt(secret, tampered)
    assert settings_secret(Settings(_env_file=None, secret_key="")) == DEV_SECRET
    assert settings_secret(Settings(_env_file=None, secret_key=secret)) == secret


def redis_contents(redis: Redis) -> bytes:
    """Every value in Redis (RQ job data decompressed), to search for a secret."""
    found: list[bytes] = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key)
        if kind == b"string":
            found.append(redis.get(key) or b"")
        elif kind == b"hash":
            found.extend(redis.hgetall(key).values())
        elif kind == b"list":
            found.extend(redis.lrange(key, 0, -1))
        elif kind == b"set":
            found.extend(redis.smembers(key))
        elif kind == b"zset":
            found.extend(redis.zrange(key, 0, -1))
        elif kind == b"stream":
            found.extend(v for _id, fields in redis.xrange(key) for v in fields.values())
    for value in list(found):
        try:
            found.append(zlib.decompress(value))
        except zlib.error:
            pass
    return b"\n".join(found)


def test_key_used_for_replies_and_never_logged_or_returned(api, alice, make_chat, fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    key = new_key()
    fake_upstream.configure(api_key=key, tokens=2)  # the server's key is refused: only alice's works
    bodies = [api.put(URL, json={"api_key": key}, headers=alice.headers).text,
              api.get(URL, headers=alice.headers).text,
              api.put(URL, json={"api_key": key + " x"}, headers=alice.headers).text,
              api.put(URL, json={"api_key": key, "base_url": "gopher://x"}, headers=alice.headers).text]

    chat = make_chat(alice)
    sent = api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hello"}, headers=alice.headers)
    bodies.append(sent.text)

    def finished_history():
        response = api.get(f"/api/v1/chat/chats/{chat['id']}", headers=alice.headers)
        return response if response.json()["messages"][-1]["status"] != "PROCESSING" else None

    history = wait_for(finished_history)
    bodies.append(history.text)
    assert history.json()["messages"][-1]["status"] == "DELIVERED"
    completions = [r for r in fake_upstream.completions if r["path"].endswith("/chat/completions")]
    assert completions and all(r["headers"]["authorization"] == f"Bearer {key}" for r in completions)

    assert not any(key in body for body in bodies)
    assert caplog.records, "the app logged nothing at DEBUG: the capture is not working"
    assert key not in caplog.text
    assert not any(key in record.getMessage() for record in caplog.records)
    assert key.encode() not in redis_contents(runtime.current().redis)


@pytest.mark.parametrize("base_url", [
    "http://127.0.0.1:9/v1", "http://localhost:8000/v1", "http://10.0.0.8/v1", "http://192.168.1.2/v1",
    "http://172.16.5.4/v1", "http://169.254.169.254/latest", "http://[::1]:8000/v1", "http://[::ffff:127.0.0.1]/v1",
    "http://0.0.0.0/v1", "http://100.64.0.1/v1", "http://224.0.0.1/v1", "http://no-such-host.invalid/v1",
    "http://2130706433/v1", "http://0x7f.1/v1", "http://[64:ff9b::a9fe:a9fe]/v1", "http://[2002:a9fe:a9fe::]/v1",
    "http://[::127.0.0.1]/v1", "http://[fec0::1]/v1", "http://straße.example/v1",
])
def test_a_private_or_local_base_url_is_refused(api, alice, settings, monkeypatch, base_url):
    monkeypatch.setattr(settings, "allow_private_user_upstreams", False)
    response = api.put(URL, json={"api_key": new_key(), "base_url": base_url}, headers=alice.headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "base_url"] and "public address" in error["msg"]
    assert stored_row(alice["user_id"]) is None


def test_a_public_base_url_is_accepted(api, alice, settings, monkeypatch):
    monkeypatch.setattr(settings, "allow_private_user_upstreams", False)
    response = api.put(URL, json={"api_key": new_key(), "base_url": "https://8.8.8.8/v1"}, headers=alice.headers)
    assert response.status_code == 200 and response.json()["base_url"] == "https://8.8.8.8/v1"


def test_a_reply_never_calls_a_private_base_url(api, alice, make_chat, connect, settings, monkeypatch,
                                                fake_upstream):
    """Set while allowed, refused before the reply once not: a name may also resolve elsewhere later.

    (The deployment's own OPENAI_BASE_URL is never checked: the operator chose it.)"""
    own_address = fake_upstream.base_url.replace("127.0.0.1", "localhost")
    assert api.put(URL, json={"api_key": new_key(), "base_url": own_address}, headers=alice.headers).status_code == 200
    monkeypatch.setattr(settings, "allow_private_user_upstreams", False)
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hello"}, headers=alice.headers)
    error = ws.until("ai_error")[-1]
    assert error["error_code"] == "unsafe_base_url" and "private or local address" in error["error"]
    assert error["message"]["status"] == "FAILED" and fake_upstream.completions == []


def test_the_connection_itself_goes_only_to_public_addresses(api, alice, make_chat, connect, settings, monkeypatch,
                                                             fake_upstream):
    """A name that resolved to a public address when checked, and to a private one when connecting
    (DNS rebinding), or a redirect to one: the connection is checked too."""
    from workers import upstream

    own_address = fake_upstream.base_url.replace("127.0.0.1", "localhost")
    assert api.put(URL, json={"api_key": new_key(), "base_url": own_address}, headers=alice.headers).status_code == 200
    monkeypatch.setattr(settings, "allow_private_user_upstreams", False)
    monkeypatch.setattr(upstream, "check_public", lambda url: None)  # the earlier checks saw a public answer
    chat = make_chat(alice)
    ws = connect(chat["id"], alice["access_token"])
    ws.next()
    api.post(f"/api/v1/chat/chats/{chat['id']}/messages", json={"content": "hello"}, headers=alice.headers)
    error = ws.until("ai_error")[-1]
    assert error["error_code"] == "unsafe_base_url" and fake_upstream.completions == []


def test_a_key_set_while_the_old_one_is_deleted_is_stored(api, alice, fake_upstream):
    """PUT replaces the key: when a DELETE removed the one it read, it stores the new key (it
    failed on the vanished row: 500)."""
    url = "/api/v1/users/me/api-keys/openai"
    assert api.put(url, json={"api_key": "sk-old-key-1111"}, headers=alice.headers).status_code == 200
    raced = sent_while_deleting(UserApiKey.__table__, stored_row(alice["user_id"]).id, lambda: api.put(
        url, json={"api_key": "sk-new-key-2222"}, headers=alice.headers))
    assert raced.status_code == 200, raced.text
    assert api.get(url, headers=alice.headers).json()["last4"] == "2222"


def test_a_delete_racing_another_delete_is_404(api, alice):
    """Two DELETEs at once: the one that finds the key gone is 404, as after it (both were 204)."""
    assert api.put(URL, json={"api_key": new_key()}, headers=alice.headers).status_code == 200
    raced = sent_while_deleting(UserApiKey.__table__, stored_row(alice["user_id"]).id,
                                lambda: api.delete(URL, headers=alice.headers))
    assert raced.status_code == 404 and raced.json() == {"detail": "No API key is set"}
