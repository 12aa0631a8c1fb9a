"""Request bodies of the auth endpoints."""
from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints, model_validator

from web.api.parsing import RequestModel


class RegisterRequest(RequestModel):
    email: EmailStr  # trimmed by the email check
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=50,
                                               pattern=r"^[A-Za-z0-9_.-]+$")]
    # Taken as typed, never trimmed: login compares the password as typed.
    password: str = Field(min_length=8, max_length=128)


class LoginRequest(RequestModel):
    username: str | None = Field(default=None, min_length=1, max_length=320)
    email: str | None = Field(default=None, min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_login(self) -> LoginRequest:
        if not (self.username or self.email):
            raise ValueError("username or email is required")
        return self

    @property
    def login(self) -> str:
        return self.username or self.email or ""


class RefreshRequest(RequestModel):
    refresh_token: str | None = None


class LogoutRequest(RequestModel):
    refresh_token: str | None = None
