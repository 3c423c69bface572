"""Datasets: upload a file of arrays, list, show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from api.schemas import DatasetList, DatasetRead, DatasetUpdate, Offset
from api.upload import UPLOAD_OPENAPI, receive_file
from models.accounts import audit, quotas
from models.data import catalog
from models.data.formats import format_for

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_OPENAPI)
async def upload_dataset(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    who: CurrentUser,
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
    `?filename=`); lists every array, shape and dtype.

    Beyond this schema: the file must be a readable .npz, .npy, .h5/.hdf5 or .csv of numbers,
    as its name's extension says, within the server's bounds (a 422 says what is wrong).
    """
    length = request.headers.get("content-length", "")
    # Refused before the body is stored when its length is known; checked again once stored.
    await run_in_threadpool(
        quotas.check_storage, session, who, settings, int(length) if length.isdigit() else 0
    )
    temp = store.temp_path()
    try:
        filename = await receive_file(request, temp, filename)
        format_for(filename)  # an unknown extension is refused before inspecting anything
        await run_in_threadpool(quotas.check_storage, session, who, settings, temp.stat().st_size)
        dataset = await run_in_threadpool(
            catalog.create, session, store, temp, filename, settings, who.user_id
        )
    finally:
        temp.unlink(missing_ok=True)
    return DatasetRead.of(dataset)


@router.get("")
def list_datasets(
    session: SessionDep,
    who: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
    all: Annotated[bool, Query(description="Admins: every user's datasets.")] = False,
) -> DatasetList:
    """List the caller's datasets, newest first."""
    found = catalog.listing(session, limit, offset, who, all)
    return DatasetList(items=[DatasetRead.of(d) for d in found])


@router.get("/{dataset_id}")
def get_dataset(dataset_id: str, session: SessionDep, who: CurrentUser) -> DatasetRead:
    """One dataset and its arrays."""
    return DatasetRead.of(catalog.get(session, dataset_id, who))


@router.patch("/{dataset_id}")
def update_dataset(
    dataset_id: str, body: DatasetUpdate, session: SessionDep, who: CurrentUser
) -> DatasetRead:
    """Share a dataset read-only with every user (`{"shared": true}`), or stop sharing it."""
    dataset = catalog.share(session, dataset_id, who, body.shared)
    audit.record(session, who.name, "dataset.share", dataset_id, shared=body.shared)
    return DatasetRead.of(dataset)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, session: SessionDep, store: StoreDep, who: CurrentUser) -> None:
    """Delete a dataset and its file (refused while an unfinished job uses it)."""
    audit.record(session, who.name, "dataset.delete", dataset_id)
    catalog.delete(session, store, dataset_id, who)
