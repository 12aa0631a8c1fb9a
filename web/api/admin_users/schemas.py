"""Query string and request body of the user administration endpoints."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from models.base import MAX_KEY
from web.api.parsing import QueryModel, RequestModel, not_null


class ListUsersQuery(QueryModel):
    search: str | None = Field(default=None, max_length=320)  # the longest email
    is_active: bool | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_KEY)


class UserChange(RequestModel):
    is_active: bool | None = None
    role: Literal["user", "admin"] | None = None

    # Left out, a field keeps its value; given as null it is refused (the columns are NOT NULL).
    _not_null = field_validator("is_active", "role")(not_null)

    @model_validator(mode="after")
    def _something(self) -> UserChange:
        if not self.model_fields_set:
            raise ValueError("give at least one of is_active, role")
        return self
