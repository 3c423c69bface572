"""Jobs: submit, list, show, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from api.examples import JOB_EXAMPLES
from api.schemas import JobList, JobRead, JobSummary, Offset
from models.access import SERVICE
from models.accounts import audit, quotas
from models.data import catalog
from models.jobs import initial_weights, records
from models.jobs.reads import JobRow
from models.jobs.validation import check_job, referenced_datasets
from models.spec import JobCreate

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "pruned"]


@router.post("", status_code=status.HTTP_201_CREATED)
def submit_job(
    spec: Annotated[JobCreate, JOB_EXAMPLES],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: CurrentUser,
) -> JobRead:
    """Validate a job fully, then queue it; a bad job gets a 422 and is never queued.

    Beyond this schema: the model must build in Keras from allowed layers within the server's
    bounds, its compile arguments must be Keras', and the arrays named or given inline must
    fit its inputs and outputs (a 422 names what does not).
    """
    shapes = catalog.shapes(session, referenced_datasets(spec), who)
    check_job(spec, shapes, settings)
    if spec.initial_weights is not None:
        initial_weights.check_source(session, spec.initial_weights, who)
    spec.time_limit_s = quotas.check_submit(session, who, settings, spec.time_limit_s)
    job = records.create(session, spec.model_dump(mode="json"), spec.name, who.user_id)
    session.commit()
    request.app.state.dispatcher.wake()  # it waits its turn for a free worker slot
    return JobRead.of(job)


@router.get("")
def list_jobs(
    session: SessionDep,
    who: CurrentUser,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
    all: Annotated[bool, Query(description="Admins: every user's jobs.")] = False,
) -> JobList:
    """List the caller's jobs, newest first, optionally by status."""
    rows, total = records.listing(session, status, limit, offset, who, all)
    return JobList(
        items=[JobSummary.of(job) for job in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{job_id}", response_model=JobRead)
async def get_job(job_id: str, request: Request) -> Response:
    """One job: status, progress, history, evaluation, error, timings, artifact links."""
    # The most polled route: read without the ORM, in batches (see models.jobs.reads), and
    # without a dependency (the caller is read from the scope, as api.deps does).
    who = request.scope.get("state", {}).get("principal", SERVICE)
    body = await request.app.state.job_reader.read(job_id, who)
    return Response(body, media_type="application/json")


def render_job(row: JobRow) -> bytes:
    """The body of ``GET /v1/jobs/{id}``."""
    return JobRead.of(row).model_dump_json().encode()


@router.get("/{job_id}/spec")
def get_job_spec(job_id: str, session: SessionDep, who: CurrentUser) -> dict[str, Any]:
    """The job spec as submitted (the model in the dialect it was sent in).

    Not part of the job itself: a job is polled, and its model JSON can be megabytes.
    """
    return records.get(session, job_id, who).spec


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, session: SessionDep, who: CurrentUser) -> JobRead:
    """Cancel: a queued job never starts; a running one stops at its next batch."""
    job = records.request_cancel(session, job_id, who)
    audit.record(session, who.name, "job.cancel", job_id)
    return JobRead.of(job)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(job_id: str, session: SessionDep, store: StoreDep, who: CurrentUser) -> None:
    """Delete a job and its artifacts (a running job is stopped first)."""
    records.delete(session, job_id, who)
    audit.record(session, who.name, "job.delete", job_id)
    session.commit()
    store.delete("jobs", job_id)
