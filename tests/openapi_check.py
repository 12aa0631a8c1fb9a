"""Every response the test suite receives through the `api` client must match /openapi.json.

The spec is built from the app (web/openapi.py); a response is checked against the operation
its method and path match: its status must be described (or fall to `default`), its media type
must be one described for that status, and a JSON body must validate against the schema.
A WebSocket frame is checked against the event of its `type` among the route's `x-events`.
"""
from __future__ import annotations

import json
import re
from typing import Any

import httpx
from jsonschema import Draft202012Validator

NOT_JSON = object()


class ResponseChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.routes = sorted(
            ((re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), path)
             for path in spec["paths"]),
            key=lambda route: route[1].count("{"))  # a literal segment wins over a parameter
        self.validators: dict[tuple[str, str, str, str], Draft202012Validator] = {}
        self.event_validators: dict[str, dict[str, Draft202012Validator]] = {}

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for pattern, template in self.routes:
            op = self.spec["paths"][template].get(method)
            if op is not None and pattern.match(path):
                return template, op
        return None

    def problems(self, response: httpx.Response) -> list[str]:
        request = response.request
        found = self.operation(request.method.lower(), request.url.path)
        if found is None:
            return []  # not a route of the app (a 404 for an unknown path)
        template, op = found
        status = str(response.status_code)
        if status in op["responses"] and response.headers.get("content-type", "").startswith("text/event-stream"):
            described_stream = "text/event-stream" in op["responses"][status].get("content", {})
            return [] if described_stream else [f"{request.method} {template} → {status}: event stream not described"]
        described = op["responses"].get(status) or op["responses"].get("default")
        where = f"{request.method} {template} → {status}"
        if described is None or (status not in op["responses"] and response.status_code < 400):
            return [f"{where}: status not described"]
        content = described.get("content", {})
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not content:
            has_body = (response.headers.get("content-length", "0") != "0"
                        or response.headers.get("transfer-encoding") == "chunked")
            return [f"{where}: body not described"] if has_body and response.status_code != 101 else []
        if media_type not in content and "*/*" not in content:
            return [f"{where}: media type {media_type!r} not described (only {sorted(content)})"]
        if media_type != "application/json":
            return []
        key = (template, request.method, status, media_type)
        if key not in self.validators:
            self.validators[key] = self.validator(content[media_type]["schema"])
        body = json.loads(response.read())
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
                for e in self.validators[key].iter_errors(body)][:5]

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator({"allOf": [schema], "components": self.spec["components"]},
                                    format_checker=Draft202012Validator.FORMAT_CHECKER)

    def events_by_type(self, template: str, op: dict[str, Any]) -> dict[str, Draft202012Validator]:
        """A validator per event `type` the route declares (each event model names its own)."""
        if template not in self.event_validators:
            found = {}
            for schema in op["x-events"]["schema"]["oneOf"]:
                component = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
                kind = component["properties"]["type"]
                for name in [kind["const"]] if "const" in kind else kind["enum"]:
                    found[name] = self.validator(schema)
            self.event_validators[template] = found
        return self.event_validators[template]

    def frame_problems(self, path: str, frame: Any) -> list[str]:
        """A JSON frame received on the WebSocket at `path`; routes without `x-events` are not checked."""
        found = self.operation("get", path)
        if found is None or "x-events" not in found[1]:
            return []
        template, op = found
        events = self.events_by_type(template, op)
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind not in events:
            return [f"WS {template}: event type {kind!r} not described (only {sorted(events)})"]
        return [f"WS {template} {kind}: {'/'.join(map(str, e.absolute_path)) or 'frame'}: {e.message}"
                for e in events[kind].iter_errors(frame)][:5]

    def check_frame(self, path: str, frame: Any) -> None:
        problems = self.frame_problems(path, frame)
        if problems:
            raise AssertionError("WebSocket frame does not match /openapi.json:\n  " + "\n  ".join(problems))

    def __call__(self, response: httpx.Response) -> None:
        """An httpx response hook: fail the request's test when the response is not as described."""
        problems = self.problems(response)
        if problems:
            raise AssertionError("response does not match /openapi.json:\n  " + "\n  ".join(problems))
