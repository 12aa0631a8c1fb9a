"""What GET /api/v1/models answers: one entry per model a chat may use, by where it comes from."""
from __future__ import annotations

from typing import Literal

from web.api.described import Answer


class UpstreamModel(Answer):
    """Listed by the primary upstream's `/models`."""
    id: str
    owned_by: str | None
    source: Literal["upstream"]


class AliasModel(Answer):
    """A `MODEL_ALIASES` name, mapped to `target` when the reply is generated."""
    id: str
    owned_by: None
    source: Literal["alias"]
    target: str


class DefaultModel(Answer):
    """`DEFAULT_AI_MODEL`, shown even when the upstream does not list it."""
    id: str
    owned_by: None
    source: Literal["default"]


class ModelList(Answer):
    object: Literal["list"]
    data: list[UpstreamModel | AliasModel | DefaultModel]
    default_model: str
    upstream_list_available: bool
