"""Datasets: upload a file of arrays, list, show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from api.deps import SessionDep, SettingsDep, StoreDep
from api.schemas import DatasetList, DatasetRead, Offset
from api.upload import UPLOAD_OPENAPI, receive_file
from models.data import catalog
from models.data.formats import format_for

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_OPENAPI)
async def upload_dataset(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    filename: Annotated[
        str | None,
        Query(
            max_length=255,
            description="The file's name, for an application/octet-stream body: its "
            "extension tells the format. A multipart upload names its file itself.",
        ),
    ] = None,
) -> DatasetRead:
    """Upload one file of arrays (multipart field `file`, or the raw file named by
    `?filename=`); lists every array, shape and dtype."""
    temp = store.temp_path()
    try:
        filename = await receive_file(request, temp, filename)
        format_for(filename)  # an unknown extension is refused before inspecting anything
        dataset = await run_in_threadpool(catalog.create, session, store, temp, filename, settings)
    finally:
        temp.unlink(missing_ok=True)
    return DatasetRead.of(dataset)


@router.get("")
def list_datasets(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> DatasetList:
    """List datasets, newest first."""
    return DatasetList(items=[DatasetRead.of(d) for d in catalog.listing(session, limit, offset)])


@router.get("/{dataset_id}")
def get_dataset(dataset_id: str, session: SessionDep) -> DatasetRead:
    """One dataset and its arrays."""
    return DatasetRead.of(catalog.get(session, dataset_id))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, session: SessionDep, store: StoreDep) -> None:
    """Delete a dataset and its file (refused while an unfinished job uses it)."""
    catalog.delete(session, store, dataset_id)
