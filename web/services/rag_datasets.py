"""Datasets: named sets of a user's library documents that a RAG search can be limited to."""
from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Dataset, Document, User, dataset_documents
from models.base import utcnow
from web.errors import Conflict, NotFound


def dataset_for(db: Session, user: User, dataset_uuid: str, kept: bool = False) -> Dataset:
    """The user's dataset; 404 for an unknown one or someone else's. `kept`: kept from deletion
    until the transaction ends (FOR KEY SHARE; a deletion in progress is waited for, then 404)."""
    query = select(Dataset).where(Dataset.uuid == dataset_uuid, Dataset.owner_id == user.id)
    dataset = db.scalar(query.with_for_update(key_share=True) if kept else query)
    if dataset is None:
        raise NotFound("Dataset not found")
    return dataset


def library_documents(db: Session, user: User, document_uuids: list[str]) -> list[Document]:
    """The user's library documents with these ids, kept from deletion until the transaction
    ends (FOR KEY SHARE; a deletion in progress is waited for); 404 naming the first unknown one."""
    found = {d.uuid: d for d in db.scalars(select(Document).where(
        Document.uuid.in_(document_uuids), Document.owner_id == user.id, Document.chat_id.is_(None))
        .with_for_update(key_share=True))}
    missing = [u for u in document_uuids if u not in found]
    if missing:
        raise NotFound(f"Document not found: {missing[0]}")
    return [found[u] for u in dict.fromkeys(document_uuids)]


def create(db: Session, user: User, name: str, description: str | None, document_uuids: list[str]) -> Dataset:
    """A new dataset of the user's library documents; 409 for a name they already use.

    The documents are read after the dataset's insert: on SQLite that write holds the database's
    write lock, so no deletion commits between the read and the links (a foreign key error).
    """
    now = utcnow()  # one instant: a new dataset's updated_at is its created_at
    dataset = Dataset(owner_id=user.id, name=name, description=description, created_at=now, updated_at=now)
    db.add(dataset)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"You already have a dataset named {name!r}") from None
    documents = library_documents(db, user, document_uuids)
    add_documents(db, dataset, [d.id for d in documents])
    db.commit()
    return dataset


def add_documents(db: Session, dataset: Dataset, document_ids: list[int]) -> int:
    """Link the documents the dataset does not hold yet; how many there were."""
    present = set(db.scalars(select(dataset_documents.c.document_id)
                             .where(dataset_documents.c.dataset_id == dataset.id)))
    rows = [{"dataset_id": dataset.id, "document_id": i} for i in document_ids if i not in present]
    if rows:
        db.execute(insert(dataset_documents), rows)
    return len(rows)


def join(db: Session, dataset: Dataset, document_id: int) -> None:
    """A document joins the dataset, which has then changed (unless it held the document already)."""
    if add_documents(db, dataset, [document_id]):
        dataset.updated_at = utcnow()


def touch_datasets_of(db: Session, document_id: int) -> None:
    """The datasets holding the document change as it leaves them (before its deletion)."""
    holding = select(dataset_documents.c.dataset_id).where(dataset_documents.c.document_id == document_id)
    db.execute(update(Dataset).where(Dataset.id.in_(holding)).values(updated_at=utcnow()))


def list_datasets(db: Session, user: User) -> list[Dataset]:
    return list(db.scalars(select(Dataset).where(Dataset.owner_id == user.id).order_by(Dataset.created_at, Dataset.id)))


def document_ids(db: Session, dataset_ids: list[int]) -> dict[int, list[str]]:
    """The document UUIDs of each dataset."""
    found: dict[int, list[str]] = {i: [] for i in dataset_ids}
    rows = db.execute(select(dataset_documents.c.dataset_id, Document.uuid)
                      .join(Document, Document.id == dataset_documents.c.document_id)
                      .where(dataset_documents.c.dataset_id.in_(dataset_ids)).order_by(Document.id))
    for dataset_id, document_uuid in rows:
        found[dataset_id].append(document_uuid)
    return found


def datasets_of_documents(db: Session, doc_ids: list[int]) -> dict[int, list[str]]:
    """The dataset UUIDs each document belongs to."""
    found: dict[int, list[str]] = {i: [] for i in doc_ids}
    rows = db.execute(select(dataset_documents.c.document_id, Dataset.uuid)
                      .join(Dataset, Dataset.id == dataset_documents.c.dataset_id)
                      .where(dataset_documents.c.document_id.in_(doc_ids)).order_by(Dataset.id))
    for doc_id, dataset_uuid in rows:
        found[doc_id].append(dataset_uuid)
    return found
