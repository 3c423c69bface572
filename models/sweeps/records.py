"""The sweep record as the API sees it: create, read (with its trials and best), list, cancel,
delete. The driver (``models.sweeps.driver``) moves it along; each trial is a job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, defer

from models.access import SERVICE, Principal, fetch, in_use, visible
from models.errors import Conflict, NotFound
from models.jobs import records as jobs
from models.sweeps.spec import SweepCreate
from models.tables import FINAL, Job, JobEvent, Sweep, Trial, utcnow

SWEEP_FINAL = ("succeeded", "failed", "cancelled")


class SweepNotFound(NotFound):
    code = "sweep_not_found"


def not_found(sweep_id: str) -> SweepNotFound:
    return SweepNotFound(
        f"No sweep with id {sweep_id!r}. List sweeps with `GET /v1/sweeps`.", sweep_id=sweep_id
    )


def create(session: Session, sweep: SweepCreate, base: dict[str, Any], owner: str | None) -> Sweep:
    """A new sweep, ``queued``: the driver asks Optuna for its first trials."""
    spec = sweep.model_dump(mode="json")
    spec["base"] = base
    row = Sweep(name=sweep.name, status="queued", spec=spec, owner=owner)
    session.add(row)
    session.flush()
    return row


def get(session: Session, sweep_id: str, who: Principal, write: bool = False) -> Sweep:
    """The sweep if ``who`` may see it (another user's is a 404, as a missing id).

    Raises:
        SweepNotFound: no such sweep, or another user's.
    """
    return fetch(session, Sweep, sweep_id, who, not_found, write)


def listing(
    session: Session, status: str | None, limit: int, offset: int, who: Principal, everyone: bool
) -> tuple[list[Sweep], int]:
    """A page of ``who``'s sweeps, newest first, and how many match."""
    query = visible(select(Sweep).options(defer(Sweep.spec)), Sweep, who, everyone)
    counter = visible(select(func.count()).select_from(Sweep), Sweep, who, everyone)
    if status:
        query = query.where(Sweep.status == status)
        counter = counter.where(Sweep.status == status)
    rows = session.scalars(
        query.order_by(Sweep.created_at.desc(), Sweep.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(session.scalar(counter) or 0)


@dataclass(frozen=True)
class TrialView:
    number: int
    job: str | None
    params: dict[str, Any]
    status: str
    value: float | None
    epochs: int


def epochs_of(history: dict[str, Any] | None) -> int:
    return max((len(values) for values in (history or {}).values()), default=0)


def trials(session: Session, sweep_id: str) -> list[TrialView]:
    """The sweep's trials by number, each as its job stands now."""
    rows = session.scalars(select(Trial).where(Trial.sweep_id == sweep_id).order_by(Trial.number))
    rows_list = list(rows)
    ids = [row.job_id for row in rows_list if row.job_id]
    jobs_now = {
        job_id: (status, history)
        for job_id, status, history in session.execute(
            select(Job.id, Job.status, Job.history).where(Job.id.in_(ids))
        )
    }
    views = []
    for row in rows_list:
        status, epochs = row.status, row.epochs
        if row.job_id in jobs_now:
            status, history = jobs_now[row.job_id]
            epochs = epochs_of(history)
        views.append(TrialView(row.number, row.job_id, row.params, status, row.value, epochs))
    return views


def best(views: list[TrialView], direction: str) -> TrialView | None:
    """The succeeded trial with the best objective value."""
    scored = [t for t in views if t.status == "succeeded" and t.value is not None]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda t: (t.value, -t.number))


def direction(sweep: Sweep) -> str:
    return str((sweep.spec.get("objective") or {}).get("direction", "minimize"))


def request_cancel(session: Session, sweep_id: str, who: Principal) -> Sweep:
    """Cancel: no trial starts any more, the unfinished ones are cancelled as jobs are.

    Raises:
        SweepNotFound: no such sweep.
        Conflict: the sweep has already ended.
    """
    sweep = get(session, sweep_id, who, write=True)
    result = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status.in_(("queued", "running")))
        .values(status="cancelled", cancel_requested=True, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.refresh(sweep)
        raise Conflict(
            f"Sweep {sweep_id} has already ended ({sweep.status}); only a queued or running "
            "sweep can be cancelled.",
            status=sweep.status,
        )
    cancel_trials(session, sweep_id)
    session.flush()
    session.refresh(sweep)
    return sweep


def cancel_trials(session: Session, sweep_id: str) -> None:
    """Cancel the sweep's unfinished trial jobs (a queued one never starts)."""
    unfinished = session.scalars(
        select(Job.id).where(Job.sweep == sweep_id, Job.status.not_in(FINAL))
    ).all()
    for job_id in unfinished:
        try:
            jobs.request_cancel(session, job_id, SERVICE)
        except (Conflict, NotFound):
            continue  # it ended (or went) meanwhile


def delete(session: Session, sweep_id: str, who: Principal) -> list[str]:
    """Delete an ended sweep, its trials and their jobs; returns the jobs' ids (their files are
    the caller's to remove, after the commit).

    Raises:
        SweepNotFound: no such sweep.
        Conflict: the sweep is still queued or running, or an unfinished job starts from the
            weights of one of its trials.
    """
    sweep = get(session, sweep_id, who, write=True)
    job_ids = list(session.scalars(select(Job.id).where(Job.sweep == sweep_id)))
    running = session.scalar(
        select(func.count()).select_from(Job).where(Job.sweep == sweep_id, Job.status.not_in(FINAL))
    )
    if sweep.status not in SWEEP_FINAL or running:
        raise Conflict(
            f"Sweep {sweep_id} is {sweep.status} with {running or 0} trials still running; "
            f"cancel it first (`POST /v1/sweeps/{sweep_id}/cancel`), then delete it once its "
            "trials have stopped.",
            status=sweep.status,
        )
    outside = session.scalars(select(Job).where(Job.status.not_in(FINAL), Job.sweep.is_(None)))
    users = [
        job
        for job in outside
        if ((job.spec or {}).get("initial_weights") or {}).get("job") in job_ids
    ]
    if users:
        raise in_use(f"Sweep {sweep_id}'s trials are the `initial_weights` of", users, who)
    if job_ids:
        session.execute(
            JobEvent.__table__.delete().where(  # type: ignore[attr-defined]
                JobEvent.job_id.in_(job_ids)
            )
        )
        session.execute(
            Job.__table__.delete().where(Job.id.in_(job_ids))  # type: ignore[attr-defined]
        )
    session.execute(Trial.__table__.delete().where(Trial.sweep_id == sweep_id))  # type: ignore[attr-defined]
    session.delete(sweep)
    return job_ids
