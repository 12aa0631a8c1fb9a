"""/datasets of the RAG API (004): named sets of the user's documents that `dataset_id` selects."""
from __future__ import annotations

from flask import g, jsonify

from web.api.described import responds
from web.api.parsing import parse_body
from web.api.rag import answers, bp
from web.api.rag.schemas import DatasetIn
from web.api.rag.serializers import dataset_view
from web.auth.tokens import login_required
from web.db import get_db
from web.services import rag_datasets


@bp.post("/datasets")
@responds(201, answers.Dataset)
@login_required
def create_dataset():
    """Create a named set of the user's documents."""
    body = parse_body(DatasetIn)
    db = get_db()
    dataset = rag_datasets.create(db, g.user, body.name, body.description, [str(i) for i in body.document_ids])
    return jsonify(dataset_view(dataset, rag_datasets.document_ids(db, [dataset.id])[dataset.id])), 201


@bp.get("/datasets")
@responds(200, answers.DatasetList)
@login_required
def list_datasets():
    """The user's datasets."""
    db = get_db()
    found = rag_datasets.list_datasets(db, g.user)
    members = rag_datasets.document_ids(db, [d.id for d in found])
    return jsonify({"datasets": [dataset_view(d, members[d.id]) for d in found], "total_count": len(found)})


@bp.get("/datasets/<dataset_id>")
@responds(200, answers.Dataset)
@login_required
def get_dataset(dataset_id: str):
    """One of the user's datasets."""
    db = get_db()
    dataset = rag_datasets.dataset_for(db, g.user, dataset_id)
    return jsonify(dataset_view(dataset, rag_datasets.document_ids(db, [dataset.id])[dataset.id]))
