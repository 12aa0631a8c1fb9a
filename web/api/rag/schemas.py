"""Request bodies and query strings of the RAG API (004)."""
from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, field_validator

from models.base import MAX_KEY
from web.api.parsing import NotBlank, QueryModel, RequestModel, validate_json_object
from web.errors import Unprocessable, validation_details


class SearchOptionsIn(RequestModel):
    """The documented `search_options`; an unknown or out-of-range option is a 400 naming it."""

    search_type: Literal["SIMILARITY", "HYBRID", "MMR"] = "SIMILARITY"
    k: int = Field(default=4, ge=1, le=50)
    score_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    rerank: bool = False
    fetch_k: int = Field(default=20, ge=1, le=200)
    lambda_mult: float = Field(default=0.5, ge=0.0, le=1.0)

    @field_validator("search_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def blank_to_none(value: Any) -> Any:
    """EventSource clients send `session_id=` for "none" (the document's own sample does)."""
    return None if value == "" else value


class SendRequest(RequestModel):
    message: str = Field(min_length=1, max_length=50_000)
    session_id: uuid.UUID | None = None
    search_options: SearchOptionsIn = Field(default_factory=SearchOptionsIn)
    dataset_id: uuid.UUID | None = None

    _blank = field_validator("session_id", "dataset_id", mode="before")(blank_to_none)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Message content cannot be empty")
        return value

    @field_validator("search_options", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return {} if value is None or value == "" else value


class SendQuery(SendRequest):
    """The fields of `SendRequest` in a `GET` query string, for EventSource (no body, no headers).

    Other parameters are ignored, as in every query string (cache busters)."""

    model_config = ConfigDict(extra="ignore")

    search_options: Json[SearchOptionsIn] = Field(default_factory=SearchOptionsIn,
                                                  description="The search options as a JSON object")
    auth_token: str | None = Field(default=None, description="The access token, when there is no "
                                                             "`Authorization` header; never logged")

    @field_validator("search_options", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return "{}" if value in (None, "", "null") else value


def parse_send(model: type[SendRequest], data: dict[str, Any], source: str) -> SendRequest:
    """Validate a send request from a JSON body or a query string (400, as the document says)."""
    try:
        return validate_json_object(model, data) if source == "body" else model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(validation_details(exc, source), status=400) from None


class PageQuery(QueryModel):
    """A page of a list (sessions, documents): the same defaults and limits on both."""

    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_KEY)


class DatasetIn(RequestModel):
    name: NotBlank = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


class UploadForm(BaseModel):
    dataset_id: uuid.UUID | None = None

    _blank = field_validator("dataset_id", mode="before")(blank_to_none)


class UploadBody(BaseModel):
    """The whole multipart/form-data body of an upload, as /openapi.json describes it."""
    file: str = Field(description="The PDF, text or Markdown file, at most 10 MB",
                      json_schema_extra={"contentMediaType": "application/octet-stream"})
    dataset_id: uuid.UUID | Literal[""] | None = Field(default=None, description="Empty is the same as absent")
