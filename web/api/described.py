"""What a view answers, declared next to it for `/openapi.json`.

    @responds(201, ChatOut)                       # a JSON body described by a pydantic model
    @responds(200, list[ChatOut])                 # any type pydantic can describe
    @responds(204)                                # no body
    @responds(200, media_type="text/event-stream", description="...")
    @emits(ChatEvent, "JSON frames, one per event")   # the events of a WebSocket or SSE stream
    @accepts(body=SendRequest)                    # input parsed without parse_body/parse_query

Errors need no declaration: every operation gets its surface's error body (web/errors.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

JSON = "application/json"
# One chat has two ids: an integer on 001, 002 and 003 and a UUID on 000 and 004; each surface shows the other.
UUID_ID = "The same chat's id on the chat API (000) and the RAG API (004)"
NUMERIC_ID = "The same chat's id on the sessions (001), conversations (002) and chats (003) APIs"


class Answer(BaseModel):
    """Base of response and event models. No field the model does not name may be sent
    (`additionalProperties: false`), and a field without a default is always present."""
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Response:
    status: int
    model: Any
    description: str
    media_type: str


@dataclass(frozen=True)
class Events:
    model: Any
    description: str


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str | None = None) -> Any:
    """An `Answer` field left out, rather than sent as null, when it does not apply (so the
    schema shows no `default: null`)."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


def _mark(view: Callable, key: str, value: Any) -> Callable:
    # Decorators apply bottom-up: insert first so declarations read top to bottom.
    view.__dict__.setdefault(key, []).insert(0, value)
    return view


def accepts(body: Any = None, query: Any = None, form: Any = None, invalid: int | None = None) -> Callable:
    """For views that parse input without `parse_body` / `parse_query` (which are found by themselves);
    `form` is a multipart/form-data body (a `bytes` field is a file), `invalid` the status of invalid
    input when it is not the surface's usual one."""
    def mark(view: Callable) -> Callable:
        given = (("body", body), ("query", query), ("form", form), ("invalid_status", invalid and str(invalid)))
        view.__dict__["described_input"] = {k: v for k, v in given if v is not None}
        return view
    return mark


def responds(status: int, model: Any = None, description: str = "", media_type: str = JSON) -> Callable:
    return lambda view: _mark(view, "described_responses", Response(status, model, description, media_type))


def emits(model: Any, description: str) -> Callable:
    return lambda view: _mark(view, "described_events", Events(model, description))


def declared(view: Callable, key: str) -> list[Any]:
    """Declarations on a view and every function it wraps (decorators copy or hide them)."""
    found: list[Any] = []
    func: Any = view
    while func is not None:
        for item in func.__dict__.get(key, []):
            if item not in found:
                found.append(item)
        func = getattr(func, "__wrapped__", None)
    return found


def input_of(view: Callable) -> dict[str, Any]:
    found: dict[str, Any] = {}
    func: Any = view
    while func is not None:
        found = {**func.__dict__.get("described_input", {}), **found}
        func = getattr(func, "__wrapped__", None)
    return found


def responses_of(view: Callable) -> list[Response]:
    return declared(view, "described_responses")


def events_of(view: Callable) -> list[Events]:
    return declared(view, "described_events")
