"""Parse a request's JSON body or query string into a pydantic model (422 on failure)."""
from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from web.errors import Unprocessable, field_error, validation_details

M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M]) -> M:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise field_error(["body"], "Request body must be a JSON object", "model_attributes_type")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(validation_details(exc, "body")) from None


def parse_query(model: type[M], error_status: int = 422) -> M:
    """Validate the query string; `error_status` lets a surface answer 400 as it documents."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise Unprocessable(validation_details(exc, "query"), status=error_status) from None
