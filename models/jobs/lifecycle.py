"""The job record as the worker sees it: claim, heartbeat, checkpoints, epochs, the end.

The row is the truth. A worker claims a job with one compare-and-set (``queued → running``,
attempt + 1), so a message delivered twice trains once; every later update is by id, and by
the owning worker where a silent worker that woke up could otherwise write over its successor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, defer

from models.access import SERVICE
from models.jobs.records import add_event, as_utc, clean_number, get
from models.tables import Job, JobEvent, utcnow


def claim(
    session: Session,
    job_id: str,
    worker: str,
    max_attempts: int,
    lease_seconds: float,
    is_dead: Callable[[str], bool] = lambda _: False,
    saved_epoch: int | None = None,
    *,
    ran_on: dict[str, Any] | None = None,
) -> str:
    """Take a job for this worker with a compare-and-set on its row.

    A queued job is claimed outright. A running job is taken over only when its worker is
    gone: its heartbeat is older than the lease, or ``is_dead`` knows its process has ended
    (a redelivery after the pool process was killed). Each claim counts one attempt; a job
    whose attempts are spent ends failed instead of looping. A takeover's event says which
    epoch training goes on from: ``saved_epoch``, the checkpoint file's own, as in
    :func:`resume_point`.

    Returns:
        ``"claimed"``, ``"resumed"`` (taken over from a lost worker), ``"exhausted"`` (failed
        now, out of attempts) or ``"skipped"`` (someone else has it, or it is final or gone).
    """
    now = utcnow()
    recorded = {"node": ran_on["worker"], "ran_on": ran_on} if ran_on else {}
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued", Job.attempts < max_attempts)
        .values(
            **recorded,
            status="running",
            attempts=Job.attempts + 1,
            worker=worker,
            started_at=func.coalesce(Job.started_at, now),
            heartbeat_at=now,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        add_event(session, job_id, "status", {"status": "running", "worker": worker})
        return "claimed"
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.status != "running":
        return "skipped"
    silent = job.heartbeat_at is None or as_utc(job.heartbeat_at) < now - timedelta(
        seconds=lease_seconds
    )
    # The job's recorded worker is this very process when a restarted container gave its new
    # pool process the dead one's pid: it runs one task at a time, so that run is over.
    gone = job.worker is not None and (job.worker == worker or is_dead(job.worker))
    if not silent and not gone:
        return "skipped"
    if job.cancel_requested:
        cancel_lost(session, job)  # cancelled, then its worker died: it ends, never resumes
        return "skipped"
    if job.attempts >= max_attempts:
        fail_lost(session, job)
        return "exhausted"
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == "running",
            Job.worker == job.worker,
            Job.attempts == job.attempts,
        )
        .values(attempts=Job.attempts + 1, worker=worker, heartbeat_at=now, **recorded)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return "skipped"
    add_event(
        session,
        job_id,
        "status",
        {
            "status": "running",
            "worker": worker,
            "resumed_from_epoch": _checkpoint_epoch(job, saved_epoch),
        },
    )
    return "resumed"


def fail_lost(session: Session, job: Job) -> None:
    """End a job whose worker was lost once too often (killed, most likely out of memory)."""
    error = {
        "type": "WorkerLost",
        "code": "worker_lost",
        "message": f"The worker running this job stopped {job.attempts} times (the process was "
        "killed or stopped responding, possibly out of memory), so it will not be retried. "
        "Try a smaller batch_size or model, or ask the operator about the worker's memory.",
    }
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == job.status, Job.attempts == job.attempts)
        .values(status="failed", error=error, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        add_event(session, job.id, "status", {"status": "failed", "error": error})


def cancel_lost(session: Session, job: Job) -> bool:
    """End as cancelled a job whose cancel was asked and whose worker was then lost.

    Putting it back in the queue would train, on another worker, a job its owner cancelled.
    """
    return _move_lost(session, job, "cancelled", finished_at=utcnow())


def holds(session: Session, job_id: str, worker: str) -> bool:
    """Whether ``worker`` still owns the running job: checked before each file it writes."""
    owner = session.scalar(select(Job.worker).where(Job.id == job_id, Job.status == "running"))
    return owner == worker


def heartbeat(
    session: Session, job_id: str, worker: str, progress: dict[str, Any] | None
) -> bool | None:
    """Renew this worker's lease (and store its progress); returns the job's cancel flag.

    Returns None when the job is no longer this worker's: deleted, taken over or finished.
    """
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.worker == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    if progress is not None:
        # One progress event per job, the latest: a late reader needs where the job stands,
        # not every half second of its life (172,800 rows a day of a running job). The new one
        # is inserted first: SQLite gives a deleted highest id to the next row, and a reader
        # that saw that id would never see the row that reuses it.
        event = add_event(session, job_id, "progress", progress)
        session.flush()
        session.execute(
            delete(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.type == "progress", JobEvent.id < event.id)
            .execution_options(synchronize_session=False)
        )
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def resume_point(
    session: Session,
    job_id: str,
    first_epoch: int = 0,
    has_checkpoint: bool = True,
    saved_epoch: int | None = None,
) -> int:
    """The epoch to start from, with the history cut back to it.

    Epochs recorded after the last checkpoint are trained again on resume, so cutting them here
    keeps every epoch in the history exactly once. Without a checkpoint file (an earlier attempt
    died before its first whole epoch) training starts over at ``first_epoch``, the spec's
    ``initial_epoch``, from which the history's first entry counts. ``saved_epoch``, the epoch
    the checkpoint file itself records, wins over the row's: a crash between writing the file
    and recording it leaves the row one epoch behind the weights.
    """
    job = get(session, job_id, SERVICE)
    epoch = _checkpoint_epoch(job, saved_epoch)
    if not has_checkpoint or epoch <= first_epoch:
        epoch = first_epoch
    kept = epoch - first_epoch
    job.history = {key: list(values)[:kept] for key, values in (job.history or {}).items()}
    job.checkpoint_epoch = epoch if epoch > first_epoch else 0
    job.progress = {**(job.progress or {}), "epoch": epoch}
    return epoch


def _checkpoint_epoch(job: Job, saved_epoch: int | None) -> int:
    """The epoch the checkpoint holds: the file's own record wins over the row's."""
    return job.checkpoint_epoch if saved_epoch is None else saved_epoch


def checkpointed(session: Session, job_id: str, epoch: int, worker: str | None = None) -> None:
    """Record that the checkpoint file now holds ``epoch`` whole epochs (by its owner only)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, *([Job.worker == worker] if worker else []))
        .values(checkpoint_epoch=epoch)
        .execution_options(synchronize_session=False)
    )


def requeue_lost(session: Session, job: Job) -> bool:
    """Put a running job whose worker went silent back in the queue (compare-and-set)."""
    return _move_lost(session, job, "queued", heartbeat_at=utcnow())  # for queued: when sent


def _move_lost(session: Session, job: Job, status: str, **values: Any) -> bool:
    """Move a running job, as last seen under its lost worker, to ``status``; compare-and-set
    on that worker and its last heartbeat, so a worker that woke up or a second sweeper loses."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            Job.status == "running",
            Job.worker == job.worker,
            Job.heartbeat_at == job.heartbeat_at,
        )
        .values(status=status, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    add_event(session, job.id, "status", {"status": status, "reason": "worker lost"})
    return True


def mark_sent(session: Session, job_id: str) -> bool:
    """Note that a queued job's message was just sent again; False if it is no longer queued."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def record_epoch(
    session: Session,
    job_id: str,
    epoch: int,
    epochs: int,
    logs: dict[str, Any],
    worker: str | None = None,
    seconds: float | None = None,
) -> dict[str, Any] | None:
    """Append one epoch's logs to the history; see :func:`record_epochs`."""
    return record_epochs(session, job_id, [EpochLogs(epoch, epochs, logs, seconds)], worker)


class EpochLogs(NamedTuple):
    """One finished epoch, as training reports it."""

    epoch: int  # 0-based, as Keras counts in callbacks
    epochs: int  # the job's
    logs: dict[str, Any]  # Keras' logs
    seconds: float | None = None  # its wall time in the worker
    steps: int | None = None  # its batches
    steps_per_execution: int | None = None  # batches per call into TensorFlow


def record_epochs(
    session: Session, job_id: str, finished: Sequence[EpochLogs], worker: str | None = None
) -> dict[str, Any] | None:
    """Append epochs' logs to the history, an event each; returns the job's cancel flag state.

    With ``worker``, only while the job is still running under that worker (the row is locked
    on PostgreSQL): a worker that went silent, was taken over and then woke up must not add
    its epochs to the history of the run that resumed its job. Returns None when it is not.
    """
    job = session.get(
        Job,
        job_id,
        with_for_update=worker is not None,
        populate_existing=True,
        options=[defer(Job.spec)],  # the model JSON can be megabytes; every epoch comes here
    )
    if job is None or (worker is not None and (job.status != "running" or job.worker != worker)):
        return None
    history = {key: list(values) for key, values in (job.history or {}).items()}
    for epoch, epochs, logs, seconds, steps, steps_per_execution in finished:
        clean = {key: clean_number(value) for key, value in logs.items()}
        for key, value in clean.items():
            history.setdefault(key, []).append(value)
        data = {"epoch": epoch + 1, "epochs": epochs, "logs": clean}
        if seconds is not None:
            data["seconds"] = round(seconds, 4)
        if steps is not None:
            data["steps"] = steps
        if steps_per_execution is not None:
            data["steps_per_execution"] = steps_per_execution
        add_event(session, job_id, "epoch", data)
        job.progress = {**(job.progress or {}), "epoch": epoch + 1, "epochs": epochs}
    job.history = history
    return {"cancel_requested": job.cancel_requested}


def cancel_requested(session: Session, job_id: str) -> bool:
    """True when the job was cancelled or deleted while it runs."""
    flag = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return flag is None or bool(flag)


def finish(
    session: Session,
    job_id: str,
    status: str,
    *,
    evaluation: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    artifacts: list[str] | None = None,
    artifact_bytes: int | None = None,
    worker: str | None = None,
) -> bool:
    """Record a job's final state (only from running, and only by its own worker if named).

    Returns:
        Whether it was recorded: False when the job was no longer running or not ``worker``'s.
    """
    values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
    if evaluation is not None:
        values["evaluation"] = {k: clean_number(v) for k, v in evaluation.items()}
    if error is not None:
        values["error"] = error
    if artifacts is not None:
        values["artifacts"] = artifacts
    if artifact_bytes is not None:
        values["artifact_bytes"] = artifact_bytes  # counts in its owner's storage quota
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id, Job.status == "running", *([Job.worker == worker] if worker else [])
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        event: dict[str, Any] = {"status": status}
        if error:
            event["error"] = error
        if evaluation is not None:
            add_event(session, job_id, "evaluation", values["evaluation"])
        add_event(session, job_id, "status", event)
        return True
    return False
