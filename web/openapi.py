"""`/openapi.json` and `/docs`: an OpenAPI 3.1 description built from the app itself.

Paths and methods come from the URL map (so every served route is described), request
bodies and query strings from the pydantic models the views validate with (found where
the view calls `parse_body(Model)` / `parse_query(Model)`), summaries from docstrings.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from flask import Blueprint, Flask, current_app, jsonify, request, send_from_directory
from pydantic import BaseModel
from werkzeug.routing import Rule

bp = Blueprint("openapi", __name__)

PARSED = re.compile(r"parse_(body|query)\(\s*([A-Za-z_][A-Za-z0-9_]*)")
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
PUBLIC = {"auth.register", "auth.login", "auth.refresh", "pages.chat_page", "openapi.spec", "openapi.docs",
          "openapi.docs_asset", "rag.health", "admin.login_form", "admin.login", "admin.logout"}
STREAMS = {
    "sessions.stream": "text/event-stream: `id: <session>:<reply>:<stream id>` and `data: <token>` per event "
                       "(one `data:` line per line of a token), `: keep-alive` comments, then `data: [DONE]`; "
                       "`event: error` with {error, error_code} on failure. `Last-Event-ID` resumes.",
    "rag.send": "text/event-stream of unnamed events, each `id:` plus `data:` JSON with a `type`: session "
                "{session_id, title}, status {status}, token {token}, citation {...}, error {error}, done "
                "{content, citations}. `Last-Event-ID` resumes; after done a reconnect gets 204.",
}
SKIP_PREFIXES = ("static", "rq_dashboard")
ERROR = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
JSON_ERROR = {"application/json": {"schema": ERROR}}
# Admin pages read the admin's session cookie (web/admin/access.py), not a bearer token.
ADMIN_SESSION = {"admin.home"}
# Open routes that check credentials of their own: a 401 when those are wrong.
CREDENTIALS = {
    "auth.login": {"description": "Wrong username or password", "content": JSON_ERROR},
    "auth.refresh": {"description": "Missing, bad, expired or revoked refresh token", "content": JSON_ERROR},
    "admin.login": {"description": "Wrong username or password (the sign-in page again, as HTML)"},
}


def request_models(view: Callable) -> dict[str, type[BaseModel]]:
    """The pydantic models a view parses its body and query string with."""
    func = inspect.unwrap(view)
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return {}
    found = {}
    for where, name in PARSED.findall(source):
        model = func.__globals__.get(name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            found[where] = model
    return found


def openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in CONVERTER.findall(rule.rule):
        kind = "integer" if converter == "int" else "string"
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": kind}})
    return CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule), params


def model_schema(model: type[BaseModel], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON Schema; nested models go to components, named `<surface>.<Model>`
    because surfaces reuse names (several have a `CreateChatRequest`)."""
    schema = model.model_json_schema(ref_template=f"#/components/schemas/{prefix}.{{model}}")
    components.update({f"{prefix}.{name}": sub for name, sub in schema.pop("$defs", {}).items()})
    return schema


def query_parameters(model: type[BaseModel], prefix: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model_schema(model, prefix, components)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def operation(app: Flask, rule: Rule, method: str, components: dict[str, Any]) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    doc = inspect.getdoc(inspect.unwrap(view)) or rule.endpoint.replace("_", " ")
    _, params = openapi_path(rule)
    op: dict[str, Any] = {
        "operationId": f"{rule.endpoint}.{method.lower()}", "summary": doc.splitlines()[0],
        "tags": [rule.endpoint.split(".")[0]], "parameters": params,
        "responses": {"200": {"description": "Success"},
                      "400": {"description": "Bad request", "content": {"application/json": {"schema": ERROR}}},
                      "422": {"description": "Invalid input", "content": {"application/json": {"schema": ERROR}}}},
    }
    if rule.endpoint in ADMIN_SESSION:
        op["security"] = [{"adminSession": []}]
        op["responses"]["302"] = {"description": "Not signed in as an admin: redirected to /admin/login"}
    elif rule.endpoint not in PUBLIC:
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = {"description": "Missing, bad, expired or revoked token",
                                  "content": {"application/json": {"schema": ERROR}}}
    if rule.endpoint in CREDENTIALS:
        op["responses"]["401"] = CREDENTIALS[rule.endpoint]
    models = request_models(view)
    prefix = rule.endpoint.split(".")[0]
    if "body" in models:
        name = f"{prefix}.{models['body'].__name__}"
        components[name] = model_schema(models["body"], prefix, components)
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    if "query" in models:
        op["parameters"] = params + query_parameters(models["query"], prefix, components)
    if rule.endpoint in STREAMS:
        op["responses"]["200"] = {"description": STREAMS[rule.endpoint],
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    if rule.websocket:
        op["description"] = "WebSocket (GET with Upgrade); events as JSON frames, see docs/api.md."
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
def docs():
    """Interactive API docs (Swagger UI, served from the swagger-ui-bundle package)."""
    return current_app.send_static_file("docs.html")


@bp.get("/docs/assets/<path:name>")
def docs_asset(name: str):
    """Swagger UI's own files, from the installed package (no CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, name)
