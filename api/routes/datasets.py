"""Datasets: upload a file of arrays, list, show, delete."""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from api.deps import SessionDep, SettingsDep, StoreDep
from api.schemas import DatasetList, DatasetRead
from models import dataset_catalog
from models.datasets import format_for
from models.errors import InvalidUpload

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_dataset(
    file: Annotated[UploadFile, File(description=".npz, .npy, .h5/.hdf5 or .csv")],
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
) -> DatasetRead:
    """Upload one file of arrays; returns its id and every array with shape and dtype."""
    if not file.filename:
        raise InvalidUpload("The multipart field `file` has no file name; send a file.")
    format_for(file.filename)  # reject an unknown extension before copying anything
    temp = store.temp_path()

    def save() -> DatasetRead:
        try:
            with open(temp, "wb") as target:
                shutil.copyfileobj(file.file, target, length=1024 * 1024)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return DatasetRead.of(
            dataset_catalog.create(session, store, temp, str(file.filename), settings)
        )

    try:
        return await run_in_threadpool(save)
    finally:
        await file.close()


@router.get("")
def list_datasets(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DatasetList:
    """List datasets, newest first."""
    return DatasetList(
        items=[DatasetRead.of(d) for d in dataset_catalog.listing(session, limit, offset)]
    )


@router.get("/{dataset_id}")
def get_dataset(dataset_id: str, session: SessionDep) -> DatasetRead:
    """One dataset and its arrays."""
    return DatasetRead.of(dataset_catalog.get(session, dataset_id))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, session: SessionDep, store: StoreDep) -> None:
    """Delete a dataset and its file (refused while an unfinished job uses it)."""
    dataset_catalog.delete(session, store, dataset_id)
