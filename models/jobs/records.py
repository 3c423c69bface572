"""The job record as the API sees it: create, read, list, cancel, delete, and its events.

The row is the truth; the worker's side of it (claim, heartbeat, epochs, finish) is
``models.jobs.lifecycle``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, defer

from models.access import Principal, fetch, in_use, visible
from models.errors import Conflict, JobNotFound
from models.jobs import event_signals
from models.tables import FINAL, Job, JobEvent, as_utc, utcnow


class Timed(Protocol):
    """What ``durations`` reads: a ``Job``, or a ``JobRow`` read without the ORM."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


def clean_number(value: Any) -> Any:
    """JSON-safe metric value: numpy scalars to float, NaN and infinities to None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else None


def create(
    session: Session, spec: dict[str, Any], name: str | None, owner: str | None = None
) -> Job:
    epochs = int(spec.get("fit", {}).get("epochs", 1))
    job = Job(
        name=name,
        status="queued",
        spec=spec,
        progress={"epoch": 0, "epochs": epochs},
        owner=owner,
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, "status", {"status": "queued"})
    return job


def not_found(job_id: str) -> JobNotFound:
    return JobNotFound(f"No job with id {job_id!r}. List jobs with `GET /v1/jobs`.", job_id=job_id)


def get(session: Session, job_id: str, who: Principal, write: bool = False) -> Job:
    """The job ``job_id`` if ``who`` may see it (or, with ``write``, change it).

    Raises:
        JobNotFound: no such job, or another user's.
    """
    return fetch(session, Job, job_id, who, not_found, write)


def listing(
    session: Session,
    status: str | None,
    limit: int,
    offset: int,
    who: Principal,
    everyone: bool = False,
) -> tuple[list[Job], int]:
    """A page of ``who``'s jobs, newest first, and the total number matching the filter."""
    query = visible(select(Job).options(defer(Job.spec)), Job, who, everyone)  # no spec
    counter = visible(select(func.count()).select_from(Job), Job, who, everyone)
    if status:
        query = query.where(Job.status == status)
        counter = counter.where(Job.status == status)
    rows = session.scalars(
        query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(session.scalar(counter) or 0)


def add_event(session: Session, job_id: str, kind: str, data: dict[str, Any]) -> JobEvent:
    """Add an event to the job's stream; on PostgreSQL its listeners are told at commit."""
    event = JobEvent(job_id=job_id, type=kind, data=data)
    session.add(event)
    _notify(session, job_id)
    return event


def _notify(session: Session, job_id: str) -> None:
    """On PostgreSQL, wake the job's event streams when this transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit, once however many times a transaction sends it.
        session.execute(select(func.pg_notify(event_signals.CHANNEL, job_id)))


def request_cancel(session: Session, job_id: str, who: Principal) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next batch.

    Both are compare-and-sets on the status, so a cancel that races a worker's claim either
    wins (the job never starts) or becomes a stop request for the now-running job.

    Raises:
        JobNotFound: no such job.
        Conflict: the job has already finished.
    """
    get(session, job_id, who, write=True)
    for current, values in (
        ("queued", {"status": "cancelled", "cancel_requested": True, "finished_at": utcnow()}),
        ("running", {"cancel_requested": True}),
    ):
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == current)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            if current == "queued":
                add_event(session, job_id, "status", {"status": "cancelled"})
            session.flush()
            job = get(session, job_id, who)
            session.refresh(job)
            return job
    job = get(session, job_id, who)
    raise Conflict(
        f"Job {job_id} has already finished ({job.status}); only queued or running jobs "
        "can be cancelled.",
        status=job.status,
    )


def delete(session: Session, job_id: str, who: Principal) -> None:
    """Delete a job and its events (its files are the caller's).

    Raises:
        JobNotFound: no such job (or another user's).
        Conflict: an unfinished job starts from this job's weights.
    """
    job = get(session, job_id, who, write=True)
    unfinished = session.scalars(select(Job).where(Job.status.not_in(FINAL), Job.id != job_id))
    users = [
        other
        for other in unfinished
        if ((other.spec or {}).get("initial_weights") or {}).get("job") == job_id
    ]
    if users:
        raise in_use(f"Job {job_id} is the `initial_weights` of", users, who)
    session.execute(
        JobEvent.__table__.delete().where(JobEvent.job_id == job_id)  # type: ignore[attr-defined]
    )
    session.delete(job)
    _notify(session, job_id)  # its streams end now, not at their next poll


def durations(job: Timed) -> dict[str, float | None]:
    """Seconds spent queued and running, as far as known."""

    def between(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return round((as_utc(end) - as_utc(start)).total_seconds(), 3)

    return {
        "queued_s": between(job.created_at, job.started_at),
        "running_s": between(job.started_at, job.finished_at),
    }
