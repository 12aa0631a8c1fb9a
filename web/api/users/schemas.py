"""Request bodies of the users API."""
from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from web.api.parsing import RequestModel


class ApiKeyRequest(RequestModel):
    """A user's own upstream key; `repr=False` keeps it out of any repr that reaches a log."""

    api_key: str = Field(min_length=8, max_length=500, pattern=r"^\S+$", repr=False)
    base_url: str | None = Field(default=None, max_length=500)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Kept as given (no normalising): the upstream client joins paths onto it."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise ValueError("base_url must be an http or https URL")
        if parts.username is not None or parts.password is not None:  # stored and shown as given, unencrypted
            raise ValueError("base_url must not carry credentials (user:password@); the key goes in api_key")
        return value
