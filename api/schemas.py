"""Response and request bodies of the API (the job spec itself is ``models.spec.JobCreate``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from models.jobs import records
from models.jobs.reads import JobRow
from models.tables import Dataset, Job

# Bounds that every database takes as a parameter: SQLite's and PostgreSQL's integers are 64-bit,
# and a list is never paged that far.
MAX_OFFSET = 2**31 - 1
MAX_EVENT_ID = 2**63 - 1
Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description="Skip this many items (newest first).")
]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `invalid_spec`.")
    message: str = Field(description="What happened, what was expected, how to fix it.")

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error: ``{"detail": {"code", "message", ...}}``, never a stack trace."""

    detail: ErrorDetail


_ERROR = {"model": ErrorBody}
# What any route may answer besides its success, declared once for the whole API.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "A malformed body (a multipart body cut short)."},
    401: {**_ERROR, "description": "A token is required and missing or wrong."},
    403: {
        **_ERROR,
        "description": "Not this caller's to do: a scope its token lacks, a request from a page "
        "of another origin, or tokens asked for by the server's own token or an open server.",
    },
    404: {**_ERROR, "description": "No such job, dataset or artifact."},
    409: {**_ERROR, "description": "Not in a state that allows it (yet)."},
    413: {**_ERROR, "description": "The body is over this server's limit."},
    422: {**_ERROR, "description": "The request is well-formed but cannot be done as asked."},
    429: {**_ERROR, "description": "Over a limit on things at once (open streams)."},
    503: {**_ERROR, "description": "The database or the broker is unreachable."},
    507: {**_ERROR, "description": "The store has no room for the upload."},
}


class _Read(BaseModel):
    @field_serializer(
        "created_at", "started_at", "finished_at", when_used="json", check_fields=False
    )
    def _utc(self, value: Any) -> Any:
        # SQLite returns naive datetimes; every time here is UTC, so say so.
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ArrayRead(BaseModel):
    name: str
    shape: list[int]
    dtype: str


class DatasetRead(_Read):
    id: str
    filename: str
    format: str
    size_bytes: int
    arrays: list[ArrayRead]
    created_at: datetime
    shared: bool | None = False

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetRead:
        return cls.model_validate(dataset, from_attributes=True)


class DatasetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shared: bool = Field(description="Every user may read it (never change or delete it).")


class DatasetList(BaseModel):
    items: list[DatasetRead]


class JobLinks(BaseModel):
    self: str
    events: str
    cancel: str
    spec: str
    weights: str | None = None
    model: str | None = None
    predict: str | None = None


class JobSummary(_Read):
    id: str
    name: str | None
    status: str = Field(
        description="queued → running → succeeded | failed | cancelled (| pruned, a sweep's trial)"
    )
    attempts: int
    worker: str | None = Field(description="host:pid of the worker process that ran it last")
    ran_on: dict[str, Any] | None = Field(
        description="The worker that ran it last, as `GET /v1/workers` names it (`worker`: its "
        "id, `name`), and the `devices` it trained on; null until a worker claims it."
    )
    progress: dict[str, Any]
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timings: dict[str, float | None]
    links: JobLinks
    sweep: str | None = Field(default=None, description="The sweep this job is a trial of.")

    @classmethod
    def fields_of(cls, job: Job | JobRow) -> dict[str, Any]:
        base = f"/v1/jobs/{job.id}"
        has = set(job.artifacts or [])
        links = JobLinks(
            self=base,
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            spec=f"{base}/spec",
            weights=f"{base}/weights" if "weights" in has else None,
            model=f"{base}/model" if "keras" in has else None,
            predict=f"{base}/predict" if "keras" in has else None,
        )
        return {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "attempts": job.attempts,
            "worker": job.worker,
            "ran_on": job.ran_on,
            "progress": job.progress or {},
            "error": job.error,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "timings": records.durations(job),
            "links": links,
            "sweep": job.sweep,
        }

    @classmethod
    def of(cls, job: Job | JobRow) -> JobSummary:
        return cls(**cls.fields_of(job))


class JobRead(JobSummary):
    history: dict[str, list[float | None]] = Field(
        description="Keras' History.history: each metric's value per epoch."
    )
    evaluation: dict[str, float | None] | None = Field(
        description="model.evaluate(..., return_dict=True) on data.test."
    )

    @classmethod
    def of(cls, job: Job | JobRow) -> JobRead:
        return cls(**cls.fields_of(job), history=job.history or {}, evaluation=job.evaluation)


class JobList(BaseModel):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int


class PredictRequest(BaseModel):
    """Arrays to predict on: inline, or named in a dataset (as in a job's data split)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    x: Any
    batch_size: int | None = Field(default=None, ge=1, le=100_000)


class PredictResponse(BaseModel):
    predictions: Any = Field(description="One array, or an object keyed by output name.")


class InspectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] | str
