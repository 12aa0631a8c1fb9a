"""The API of 004_7f0dbffbfb14e8b9.txt: retrieval-augmented chat over SSE, documents, datasets, health."""
from __future__ import annotations

from flask import Blueprint

from web.api.parsing import canonical_uuids

bp = Blueprint("rag", __name__)
bp.url_value_preprocessor(canonical_uuids)

from web.api.rag import chat, datasets, documents, health  # noqa: E402,F401  (register the views)
