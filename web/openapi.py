"""`/openapi.json` and `/docs`: an OpenAPI 3.1 description built from the app itself.

Paths and methods come from the URL map (so every served route is described), request
bodies and query strings from the pydantic models the views validate with (found where
the view calls `parse_body(Model)` / `parse_query(Model)`), responses and stream events from
the models declared with `@responds` / `@emits` (web/api/described.py), error bodies from the
surface's error renderer, summaries from docstrings.
"""
from __future__ import annotations

import inspect
import json
import re
from typing import Any, Callable

from flask import Blueprint, Flask, current_app, jsonify, request, send_from_directory
from pydantic import BaseModel, TypeAdapter
from werkzeug.routing import Rule

from models.base import MAX_KEY
from web import errors
from web.api import described

bp = Blueprint("openapi", __name__)

PARSED = re.compile(r"parse_(body|optional_body|query)\(\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s*,\s*error_status\s*=\s*(\d+))?")
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
PUBLIC = {"auth.register", "auth.login", "auth.refresh", "pages.chat_page", "openapi.spec", "openapi.docs",
          "openapi.docs_asset", "rag.health"}
# Open routes that check credentials of their own: a 401 when those are wrong.
CREDENTIALS = {"auth.login": "Wrong username or password",
               "auth.refresh": "Missing, bad, expired or revoked refresh token"}
SKIP_PREFIXES = ("static", "rq_dashboard", "admin.")  # admin pages: HTML behind a cookie, see operations.md
SHARED, SHARED_MODELS = "errors", {errors.ErrorBody.__name__, errors.FieldError.__name__}
INVALID = {"chats_v1": "400"}  # surfaces that answer invalid input with 400 rather than 422


def request_models(view: Callable) -> dict[str, Any]:
    """The pydantic models a view parses its body, form and query string with (and the status
    a `parse_query(..., error_status=N)` answers invalid input with)."""
    func = inspect.unwrap(view)
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return {}
    found: dict[str, Any] = {}
    for where, name, status in PARSED.findall(source):
        model = func.__globals__.get(name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            found["body" if where == "optional_body" else where] = model
            if where == "optional_body":
                found["optional_body"] = True
        if status:
            found["invalid_status"] = status
    return {**found, **described.input_of(view)}


def openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in CONVERTER.findall(rule.rule):
        schema = {"type": "integer", "minimum": 0, "maximum": MAX_KEY} if converter == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule), params


def component(name: str, prefix: str) -> str:
    """A model's component name: `<surface>.<Model>` (surfaces reuse names: several have a
    `CreateChatRequest`); the error models keep one component wherever they are used."""
    return f"{SHARED if name in SHARED_MODELS else prefix}.{name}"


def inline_schema(kind: Any, prefix: str, components: dict[str, Any], mode: str = "validation") -> dict[str, Any]:
    """The JSON Schema of any type pydantic describes, its nested models moved to components."""
    template = f"#/components/schemas/{prefix}.{{model}}"
    schema = TypeAdapter(kind).json_schema(ref_template=template, mode=mode)
    if prefix != SHARED:
        text = json.dumps(schema)
        for name in SHARED_MODELS:
            text = text.replace(f'"{template.format(model=name)}"', f'"#/components/schemas/{SHARED}.{name}"')
        schema = json.loads(text)
    components.update({component(name, prefix): sub for name, sub in schema.pop("$defs", {}).items()})
    return schema


def type_schema(kind: Any, prefix: str, components: dict[str, Any], mode: str = "validation") -> dict[str, Any]:
    """A pydantic model as a `$ref` to its component; any other type inline (`list[Model]`...)."""
    schema = inline_schema(kind, prefix, components, mode)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        name = component(kind.__name__, prefix)
        components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}
    return schema


def query_parameters(model: type[BaseModel], prefix: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = inline_schema(model, prefix, components)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def events_schema(view: Callable, prefix: str, components: dict[str, Any]) -> dict[str, Any] | None:
    events = described.events_of(view)
    if not events:
        return None
    return {"oneOf": [type_schema(e.model, prefix, components, mode="serialization") for e in events]}


def sse_schema(events: dict[str, Any] | None) -> dict[str, Any]:
    """One server-sent event (the schema of a text/event-stream describes each event); `data` is
    JSON text of one of the route's events when it declares them."""
    data: dict[str, Any] = {"type": "string"}
    if events:
        data.update(contentMediaType="application/json", contentSchema=events)
    return {"type": "object", "required": ["data"], "properties": {
        "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}, "data": data}}


def success_responses(view: Callable, prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for declared in described.responses_of(view):
        entry = responses.setdefault(str(declared.status), {"description": declared.description or "Success"})
        if declared.description:
            entry["description"] = declared.description
        if declared.model is not None:
            schema = type_schema(declared.model, prefix, components, mode="serialization")
        elif declared.media_type == "text/event-stream":
            schema = sse_schema(events_schema(view, prefix, components))
        elif declared.media_type != described.JSON:
            schema = {"type": "string"}
        else:
            continue
        entry.setdefault("content", {})[declared.media_type] = {"schema": schema}
    return responses


def error_responses(app: Flask, rule: Rule, secured: bool, models: dict[str, Any],
                    components: dict[str, Any]) -> dict[str, Any]:
    """The statuses every such operation can answer, all in its surface's error body."""
    prefix = rule.endpoint.split(".")[0]
    model = errors.error_body(app, rule.rule)
    body = {"application/json": {"schema": type_schema(model, prefix, components)}}
    statuses = {"default": "Error"}
    if secured:
        statuses["401"] = "Missing, malformed, expired or revoked token"
    if rule.endpoint in CREDENTIALS:
        statuses["401"] = CREDENTIALS[rule.endpoint]
    if rule.arguments:
        statuses["404"] = "No such resource, or not yours"
    if models:
        invalid = models.get("invalid_status") or INVALID.get(prefix, "422")
        statuses[invalid] = "Invalid input: what is wrong, field by field"
    return {status: {"description": text, "content": body} for status, text in statuses.items()}


def operation(app: Flask, rule: Rule, method: str, components: dict[str, Any]) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    doc = inspect.getdoc(inspect.unwrap(view)) or rule.endpoint.replace("_", " ")
    _, params = openapi_path(rule)
    prefix = rule.endpoint.split(".")[0]
    models = request_models(view)
    secured = rule.endpoint not in PUBLIC
    op: dict[str, Any] = {
        "operationId": f"{rule.endpoint}.{method.lower()}", "summary": doc.splitlines()[0],
        "tags": [prefix], "parameters": params,
    }
    if len(doc.splitlines()) > 1:
        op["description"] = doc
    if secured:
        op["security"] = [{"bearer": []}]
    if "body" in models:
        op["requestBody"] = {"required": not models.get("optional_body"), "content": {
            "application/json": {"schema": type_schema(models["body"], prefix, components)}}}
    if "form" in models:
        op["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": type_schema(models["form"], prefix, components)}}}
    if "query" in models:
        op["parameters"] = params + query_parameters(models["query"], prefix, components)
    op["responses"] = {**success_responses(view, prefix, components),
                       **error_responses(app, rule, secured, models, components)}
    if rule.websocket:
        op["responses"]["101"] = {"description": "Switching Protocols: a WebSocket carrying the JSON frames "
                                                 "described in `x-events`"}
    events = events_schema(view, prefix, components)
    if events:
        op["x-events"] = {"description": " ".join(e.description for e in described.events_of(view)),
                          "schema": events}
    return op


def build_spec(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.startswith(SKIP_PREFIXES):
            continue
        path, _ = openapi_path(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = operation(app, rule, method, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley", "version": "0.1.0",
                 "description": "Five chat APIs over one data model. Choices and event formats: docs/api.md."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                                           "adminSession": {"type": "apiKey", "in": "cookie", "name": "parley_admin"}}},
    }


@bp.get("/openapi.json")
@described.responds(200, dict[str, Any], "This document")
def spec():
    """The OpenAPI 3.1 description of every route (`?ui=swagger4`: labelled 3.0.3 for Swagger UI 4)."""
    if "openapi_spec" not in current_app.extensions:
        current_app.extensions["openapi_spec"] = build_spec(current_app)
    described = current_app.extensions["openapi_spec"]
    if request.args.get("ui") == "swagger4":
        # The packaged Swagger UI (4.15) refuses the 3.1 label but renders these schemas.
        described = {**described, "openapi": "3.0.3"}
    return jsonify(described)


@bp.get("/docs")
@described.responds(200, media_type="text/html")
def docs():
    """Interactive API docs (Swagger UI, served from the swagger-ui-bundle package)."""
    return current_app.send_static_file("docs.html")


@bp.get("/docs/assets/<path:name>")
@described.responds(200, media_type="*/*", description="A file of Swagger UI")
def docs_asset(name: str):
    """Swagger UI's own files, from the installed package (no CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, name)
