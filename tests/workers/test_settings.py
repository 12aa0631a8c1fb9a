"""Settings with values no process can run on are refused when the process starts, naming the setting."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from workers.settings import Settings


@pytest.mark.parametrize("name, value", [
    ("worker_threads", "0"),  # `python -m workers` exited 0 at once, serving nothing
    ("max_body_bytes", "-1"),  # every request with a body was a 413 "at most -1 bytes"
    ("max_concurrent_streams", "0"),
    ("access_token_minutes", "-5"),  # every token born expired
    ("reply_job_timeout_s", "0"),
    ("redis_max_connections", "0"),
    ("sse_keepalive_s", "-1"),
    ("ws_idle_timeout_s", "0"),
    ("ws_client_frames_per_s", "5"),  # below a resume's cost of 10: no resume would ever be served
    ("rate_limit", "garbage"),  # every request was a 500
    ("rate_limit", ""),  # no limit at all, silently
    ("password_hash", "md5"),  # every registration was a 500
    ("password_hash", "scrypt:1000:8:1"),  # N must be a power of 2
    ("password_hash", "pbkdf2:nosuchdigest:1000"),
    ("default_ai_model", "text-embedding-3-small"),  # every reply failed upstream
    ("model_aliases", "fast=gpt-4o-mini,voice=tts-1"),  # every reply with the alias failed upstream
])
def test_a_value_no_process_can_run_on_is_refused_at_start(monkeypatch, name, value):
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert name in str(refused.value)


def test_the_documented_values_are_accepted(monkeypatch):
    monkeypatch.setenv("REPLY_CHUNK_WINDOW_MS", "0")  # documented: every token alone
    monkeypatch.setenv("RATE_LIMIT", "100/minute;10/second")
    monkeypatch.setenv("MODEL_ALIASES", "fast=gpt-4o-mini,smart=gpt-4")  # documented example
    settings = Settings(_env_file=None)
    assert settings.reply_chunk_window_ms == 0 and settings.rate_limit == "100/minute;10/second"
    assert settings.aliases() == {"fast": "gpt-4o-mini", "smart": "gpt-4"}


@pytest.mark.parametrize("secret", ["", " " * 38, "short"])
def test_production_needs_a_real_secret_key(secret):
    settings = Settings(_env_file=None, production=True, secret_key=secret, database_url="postgresql://db/p",
                        redis_url="redis://cache")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        settings.check()
    Settings(_env_file=None, production=True, secret_key="k" * 32, database_url="postgresql://db/p",
             redis_url="redis://cache").check()


@pytest.mark.parametrize("method", ["scrypt:1024:8:1", "pbkdf2:sha256:1000"])
def test_production_refuses_a_password_hash_cheaper_than_the_default(method):
    production = dict(production=True, secret_key="k" * 32, database_url="postgresql://db/p", redis_url="redis://c")
    with pytest.raises(RuntimeError, match="PASSWORD_HASH"):
        Settings(_env_file=None, password_hash=method, **production).check()
    Settings(_env_file=None, password_hash="scrypt:65536:8:1", **production).check()
    Settings(_env_file=None, password_hash="pbkdf2:sha512:2000000", **production).check()
