"""Datasets: an uploaded file in the store plus its row in the catalogue."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.access import Principal, fetch, in_use, readable, visible
from models.data.datasets import ArrayReader, inspect_file
from models.data.formats import format_for
from models.data.store import LocalStore
from models.errors import Conflict, DatasetNotFound
from models.settings import Settings
from models.tables import FINAL, Dataset, Job, Sweep, new_id


def data_file(fmt: str) -> str:
    """The fixed name of a dataset's file in the store (a CSV upload is kept as its arrays)."""
    return STORED_CSV if fmt == "csv" else f"data.{fmt}"


# A CSV file is parsed once, at upload, and stored as the .npz of its columns: jobs and
# predictions read arrays, never the text again. Older stores still hold ``data.csv``.
STORED_CSV = "data.csv.npz"


def _store_columns(temp: Path, store: LocalStore, settings: Settings) -> tuple[list[Any], Path]:
    """Parse an uploaded CSV file and write its columns as an .npz file in the store's tmp."""
    with ArrayReader(temp, "csv", settings) as reader:
        arrays = reader.infos()
        columns = {info.name: reader.get(info.name) for info in arrays}
    stored = store.temp_path(".npz")
    try:
        with stored.open("wb") as handle:
            np.savez(handle, **columns)  # type: ignore[arg-type]
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    return arrays, stored


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
    kept = temp
    try:
        fmt = format_for(filename)
        if fmt == "csv":
            arrays, kept = _store_columns(temp, store, settings)
        else:
            arrays = inspect_file(temp, fmt, settings)
        dataset = Dataset(
            id=new_id(),
            filename=Path(filename).name[:255],
            format=fmt,
            size_bytes=temp.stat().st_size,
            arrays=[info.as_dict() for info in arrays],
            owner=owner,
        )
        store.adopt(kept, "datasets", dataset.id, data_file(fmt))
    finally:
        temp.unlink(missing_ok=True)
        kept.unlink(missing_ok=True)
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
    return {row.id: array_shapes(row) for row in rows}


def array_shapes(dataset: Dataset) -> dict[str, tuple[int, ...]]:
    """The shape of each array of ``dataset`` by name, from the catalogue (no file is read)."""
    return {a["name"]: tuple(a["shape"]) for a in dataset.arrays}


def delete(session: Session, store: LocalStore, dataset_id: str, who: Principal) -> None:
    """Delete a dataset unless a queued or running job still needs it (to train on, or to
    start from as its initial weights).

    Raises:
        DatasetNotFound: no such dataset.
        Conflict: an unfinished job or sweep references it.
    """
    dataset = get(session, dataset_id, who, write=True)
    sweeps = session.scalars(select(Sweep).where(Sweep.status.in_(("queued", "running"))))
    if any(dataset_id in _datasets_of((sweep.spec or {}).get("base") or {}) for sweep in sweeps):
        raise Conflict(  # its next trials will need it
            f"Dataset {dataset_id} is used by an unfinished sweep; cancel the sweep or wait for "
            "it to end (`GET /v1/sweeps`), then delete it."
        )
    unfinished = session.scalars(select(Job).where(Job.status.not_in(FINAL)))
    users = [job for job in unfinished if dataset_id in _datasets_of(job.spec)]
    if users:  # a shared dataset may be in other users' jobs
        raise in_use(f"Dataset {dataset_id} is used by", users, who)
    session.delete(dataset)
    session.commit()
    store.delete("datasets", dataset_id)


def _datasets_of(spec: dict[str, Any]) -> set[str]:
    """The datasets a job spec reads: its splits' and its initial weights'."""
    splits = [*(spec.get("data") or {}).values(), spec.get("initial_weights")]
    return {
        split["dataset"]
        for split in splits
        if isinstance(split, dict) and isinstance(split.get("dataset"), str)
    }


def open_reader(
    session: Session, store: LocalStore, dataset_id: str, who: Principal
) -> ArrayReader:
    """The arrays of a dataset, as a context manager with ``get(name)`` (for training)."""
    dataset = get(session, dataset_id, who)
    path = store.path("datasets", dataset.id, data_file(dataset.format))
    if dataset.format == "csv":
        if path.is_file():
            return ArrayReader(path, "npz")
        return ArrayReader(store.path("datasets", dataset.id, "data.csv"), "csv")  # older store
    return ArrayReader(path, dataset.format)
