"""Datasets: an uploaded file in the store plus its row in the catalogue."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.access import Principal, fetch, readable, visible
from models.data.datasets import ArrayReader, inspect_file
from models.data.formats import format_for
from models.data.store import LocalStore
from models.errors import Conflict, DatasetNotFound
from models.settings import Settings
from models.tables import FINAL, Dataset, Job, new_id


def data_file(fmt: str) -> str:
    """The fixed name of a dataset's file in the store."""
    return f"data.{fmt}"


def create(
    session: Session,
    store: LocalStore,
    temp: Path,
    filename: str,
    settings: Settings,
    owner: str | None,
) -> Dataset:
    """Inspect an uploaded temporary file and catalogue it; nothing is left behind on error.

    Raises:
        InvalidUpload: the file is not a usable dataset.
    """
    try:
        fmt = format_for(filename)
        arrays = inspect_file(temp, fmt, settings)
        dataset = Dataset(
            id=new_id(),
            filename=Path(filename).name[:255],
            format=fmt,
            size_bytes=temp.stat().st_size,
            arrays=[info.as_dict() for info in arrays],
            owner=owner,
        )
        store.adopt(temp, "datasets", dataset.id, data_file(fmt))
    finally:
        temp.unlink(missing_ok=True)
    try:
        session.add(dataset)
        session.commit()
    except BaseException:
        session.rollback()
        store.delete("datasets", dataset.id)
        raise
    return dataset


def not_found(dataset_id: str) -> DatasetNotFound:
    return DatasetNotFound(
        f"No dataset with id {dataset_id!r}. List datasets with `GET /v1/datasets`.",
        dataset_id=dataset_id,
    )


def get(session: Session, dataset_id: str, who: Principal, write: bool = False) -> Dataset:
    """The dataset if ``who`` may read it (own or shared), or with ``write`` change it (own).

    Raises:
        DatasetNotFound: no such dataset, or another user's.
    """
    return fetch(session, Dataset, dataset_id, who, not_found, write)


def listing(
    session: Session, limit: int, offset: int, who: Principal, everyone: bool = False
) -> list[Dataset]:
    query = visible(select(Dataset), Dataset, who, everyone)
    query = query.order_by(Dataset.created_at.desc(), Dataset.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def share(session: Session, dataset_id: str, who: Principal, shared: bool) -> Dataset:
    """Share a dataset read-only with every user, or stop sharing it (its owner or an admin)."""
    dataset = get(session, dataset_id, who, write=True)
    dataset.shared = shared
    return dataset


def shapes(
    session: Session, ids: Iterable[str], who: Principal
) -> dict[str, dict[str, tuple[int, ...]]]:
    """Array shapes by name for each dataset among ``ids`` that ``who`` may read."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.scalars(readable(select(Dataset), Dataset, who).where(Dataset.id.in_(wanted)))
    return {row.id: {a["name"]: tuple(a["shape"]) for a in row.arrays} for row in rows}


def delete(session: Session, store: LocalStore, dataset_id: str, who: Principal) -> None:
    """Delete a dataset unless a queued or running job still needs it.

    Raises:
        DatasetNotFound: no such dataset.
        Conflict: an unfinished job references it.
    """
    dataset = get(session, dataset_id, who, write=True)
    unfinished = session.scalars(select(Job).where(Job.status.not_in(FINAL)))
    users = [
        job
        for job in unfinished
        if any(
            isinstance(split, dict) and split.get("dataset") == dataset_id
            for split in (job.spec.get("data") or {}).values()
        )
    ]
    if users:
        # A shared dataset may be in other users' jobs: their ids are not the caller's to see.
        own = [job.id for job in users if who.sees(job.owner)][:10]
        others = sum(not who.sees(job.owner) for job in users)
        raise Conflict(
            f"Dataset {dataset_id} is used by unfinished jobs {own}"
            + (f" and {others} of other users" if others else "")
            + "; cancel them or wait for them to finish, then delete it.",
            jobs=own,
        )
    session.delete(dataset)
    session.commit()
    store.delete("datasets", dataset_id)


def open_reader(
    session: Session, store: LocalStore, dataset_id: str, who: Principal
) -> ArrayReader:
    """The arrays of a dataset, as a context manager with ``get(name)`` (for training)."""
    dataset = get(session, dataset_id, who)
    return ArrayReader(
        store.path("datasets", dataset.id, data_file(dataset.format)), dataset.format
    )
