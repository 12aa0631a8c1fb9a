"""Read a request's JSON body and query string into pydantic models (422 on failure).

Request bodies are `RequestModel`s: unknown fields are refused, so a misspelt field is an
error rather than silently ignored. Query strings are `QueryModel`s: unknown parameters are
ignored (tokens travel as `?token=`/`?auth_token=`, browsers add cache busters). Both refuse
what the database cannot store: NUL characters, lone surrogates, NaN and infinities.
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Annotated, Any, NoReturn, TypeVar

from flask import request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator
from werkzeug.exceptions import RequestEntityTooLarge

from web.errors import Unprocessable, validation_details

MAX_JSON_DEPTH = 32  # arrays and objects inside each other; the documents need four
MAX_INT_DIGITS = 32  # past 64 bits already; a longer integer is refused while the JSON is read
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
TOO_DEEP = f"JSON is nested more than {MAX_JSON_DEPTH} levels deep"

M = TypeVar("M", bound=BaseModel)


UUID_SHAPE = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")


def canonical_uuids(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A blueprint's url_value_preprocessor: UUID path parameters in lower case, as they are stored.

    An upper-case UUID names the same chat or document (RFC 9562 compares them without case), so
    it must not be 404.
    """
    for name, value in (values or {}).items():
        values[name] = canonical_uuid(value)


def canonical_uuid(value: Any) -> Any:
    """A UUID-shaped string in lower case, as ids are stored; any other value as it is."""
    return value.lower() if isinstance(value, str) and UUID_SHAPE.fullmatch(value) else value


# A body field naming a row by its UUID: upper case names the same row (see canonical_uuids).
UuidKey = Annotated[str, AfterValidator(canonical_uuid)]


def storable(value: Any) -> Any:
    """Refuse text PostgreSQL cannot store (NUL, lone surrogates), at any depth of a value."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = UNSTORABLE.search(item)
            if found and found.group() == "\x00":
                raise ValueError("must not contain NUL characters")
            if found:
                raise ValueError("must be valid Unicode text (it holds a lone surrogate)")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


class InputModel(BaseModel):
    """What every request model refuses: NaN and infinities, text PostgreSQL cannot store."""

    model_config = ConfigDict(allow_inf_nan=False)

    _storable = field_validator("*", mode="before")(storable)


class RequestModel(InputModel):
    """The base of every JSON request body: an unknown field is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")


class QueryModel(InputModel):
    """The base of every query string: unknown parameters are ignored."""


def not_blank(value: str) -> str:
    """Text must say something (NUL characters are refused by every request model)."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NotBlank = Annotated[str, AfterValidator(not_blank)]

METADATA_BYTES = 16384


def small_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A client's metadata object is stored and shown with every item of a list (up to 1,000 a page)."""
    if value is not None and len(json.dumps(value, ensure_ascii=False).encode()) > METADATA_BYTES:
        raise ValueError(f"must take at most {METADATA_BYTES} bytes as JSON")
    return value


Metadata = Annotated[dict[str, Any] | None, AfterValidator(small_metadata)]


def in_utc(value: datetime | None) -> datetime | None:
    """A date-time as UTC (naive ones are UTC): PostgreSQL takes offsets only up to ±15:59."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("date-time out of range once in UTC") from None


NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def iso_text(value: Any) -> Any:
    """Date-times come as ISO 8601 text: pydantic reads a number (`2024`, `0.0`) as seconds since 1970."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date-time such as 2024-01-31T12:00:00Z, not a number")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(iso_text), AfterValidator(in_utc)]


def not_null(value: Any) -> Any:
    """An optional field of a partial update that, once given, must have a value: its column is NOT NULL."""
    if value is None:
        raise ValueError("cannot be null")
    return value


def invalid_body(msg: str, kind: str, status: int) -> NoReturn:
    raise Unprocessable([{"loc": ["body"], "msg": msg, "type": kind}], status=status)


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integers may have at most {MAX_INT_DIGITS} digits")
    return int(text)


def no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def depth(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def request_body() -> bytes:
    """The whole body, or 413 past the request's cap (werkzeug answers 413 for a Content-Length
    over it, but stops reading a chunked body at the cap without saying so)."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def read_json_object(status: int = 422) -> dict[str, Any]:
    """The request's body as a JSON object, or an error saying what is wrong with it
    (`status` for an unreadable body: 422, or 400 where a surface documents that)."""
    raw = request_body()
    if not raw:
        invalid_body("Request body must be a JSON object", "missing", status)
    if not request.is_json:
        invalid_body("Content-Type must be application/json", "content_type", status)
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=finite_float, parse_int=short_int,
                          parse_constant=no_constant)
    except UnicodeDecodeError:
        invalid_body("Request body is not valid UTF-8", "json_invalid", status)
    except RecursionError:  # Python's json gives up past ~1000 levels; not a ValueError
        invalid_body(TOO_DEEP, "json_invalid", status)
    except ValueError as exc:
        invalid_body(f"Invalid JSON: {exc}", "json_invalid", status)
    if depth(data) > MAX_JSON_DEPTH:
        invalid_body(TOO_DEEP, "json_invalid", status)
    if not isinstance(data, dict):
        invalid_body("Request body must be a JSON object", "model_attributes_type", status)
    return data


def validate_json_object(model: type[M], data: dict[str, Any]) -> M:
    """`data`, read from a JSON body, as `model`, by JSON's types: `true` is not the id 1, and "5"
    is not the number 5 (pydantic's strict JSON mode; it still reads ISO dates, UUIDs and enums).
    The lax pass comes first for its messages: strict JSON cannot even read a lone surrogate."""
    model.model_validate(data)
    return model.model_validate_json(json.dumps(data), strict=True)


def parse_body(model: type[M]) -> M:
    try:
        return validate_json_object(model, read_json_object())
    except ValidationError as exc:
        raise Unprocessable(validation_details(exc, "body")) from None


def parse_optional_body(model: type[M]) -> M:
    """As parse_body, for a body whose fields are all optional: no body at all means the defaults."""
    return parse_body(model) if request_body() else model()


def parse_query(model: type[M], error_status: int = 422) -> M:
    """Validate the query string; `error_status` lets a surface answer 400 as it documents."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise Unprocessable(validation_details(exc, "query"), status=error_status) from None
