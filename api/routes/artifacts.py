"""What a finished job leaves: weights, the whole model, and predictions from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from api.schemas import PredictRequest, PredictResponse
from models.data import catalog
from models.errors import ArtifactNotFound, Conflict
from models.jobs import records
from models.keras import prediction
from models.keras.serving import SAVEDMODEL, export_savedmodel
from models.keras.training import ARTIFACTS
from models.keras.weights_export import keras2_model, weights_json
from models.tables import Job

router = APIRouter(prefix="/v1/jobs", tags=["artifacts"])
HDF5 = "application/x-hdf5"
WeightsFormat = Literal["keras3", "keras2", "json"]


def _artifact(job: Job, key: str, store: StoreDep) -> str:
    if key in (job.artifacts or []):
        return str(store.path("jobs", job.id, ARTIFACTS[key]))
    if job.status in ("queued", "running"):
        raise Conflict(
            f"Job {job.id} is {job.status}; its weights and model are ready once it has "
            "finished. Poll `GET /v1/jobs/{id}` or follow `/events`.",
            status=job.status,
        )
    raise ArtifactNotFound(
        f"Job {job.id} ended {job.status} without a trained model"
        + (f": {job.error.get('message')}" if job.error else ".")
    )


def _download_name(job: Job, suffix: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", job.name or "")[:80].strip("-.") or job.id
    return f"{stem}{suffix}"


@router.get(
    "/{job_id}/weights",
    response_class=FileResponse,
    responses={200: {"content": {HDF5: {}, "application/json": {}}}},
)
def download_weights(
    job_id: str,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    who: CurrentUser,
    format: WeightsFormat | None = None,
) -> Response:
    """Trained weights for `model.load_weights()`: Keras 3 `.weights.h5`, Keras 2 `.h5`, or JSON.

    By default in the layout of the Keras that wrote the job's model JSON; `json` gives
    `get_weights()` (for `model.set_weights()`) in layer order, for small models.
    """
    job = records.get(session, job_id, who)
    chosen = format or ("keras2" if keras2_model(job.spec.get("model") or {}) else "keras3")
    if chosen == "json":
        path = _artifact(job, "keras2", store)
        return JSONResponse(weights_json(path, settings.max_weights_json_values))
    key, suffix = ("weights", ".weights.h5") if chosen == "keras3" else ("keras2", ".h5")
    return FileResponse(
        _artifact(job, key, store), media_type=HDF5, filename=_download_name(job, suffix)
    )


@router.get("/{job_id}/model", response_class=FileResponse)
def download_model(
    job_id: str,
    session: SessionDep,
    store: StoreDep,
    who: CurrentUser,
    format: Literal["keras", "h5", "savedmodel"] = "keras",
) -> FileResponse:
    """The whole trained model: `.keras` (default) or legacy `.h5` for `load_model()`, or
    `savedmodel`, a `.tar.gz` of folder `1/` for TensorFlow Serving (made on first request)."""
    job = records.get(session, job_id, who)
    if format == "savedmodel":
        return FileResponse(
            _savedmodel(job, store),
            media_type="application/gzip",
            filename=_download_name(job, ".savedmodel.tar.gz"),
        )
    media = "application/zip" if format == "keras" else HDF5
    return FileResponse(
        _artifact(job, format, store), media_type=media, filename=_download_name(job, f".{format}")
    )


def _savedmodel(job: Job, store: StoreDep) -> str:
    """The job's SavedModel archive, exported from its `.keras` model the first time."""
    source = _artifact(job, "keras", store)
    if not store.exists("jobs", job.id, SAVEDMODEL):
        export_savedmodel(
            Path(source),
            lambda: store.writing("jobs", job.id, SAVEDMODEL),
            store.temp_path().parent,
        )
    return str(store.path("jobs", job.id, SAVEDMODEL))


@router.post("/{job_id}/predict")
async def predict(
    job_id: str,
    body: PredictRequest,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    who: CurrentUser,
) -> PredictResponse:
    """Predictions of the trained model on inline arrays or on arrays of a dataset.

    Beyond this schema: `x` must have the trained model's input shape (or name arrays of
    `dataset` that do), with at most REMOTEFIT_MAX_PREDICT_ROWS rows (a 422 says what differs).
    """

    def run() -> PredictResponse:
        job = records.get(session, job_id, who)
        path = _artifact(job, "keras", store)
        dataset = None
        if body.dataset is not None:
            dataset_id = body.dataset
            shapes = catalog.array_shapes(catalog.get(session, dataset_id, who))
            dataset = (shapes, lambda: catalog.open_reader(session, store, dataset_id, who))
        result = prediction.predict(
            path, body.x, dataset, body.batch_size, settings.max_predict_rows
        )
        return PredictResponse(predictions=result)

    return await run_in_threadpool(run)
