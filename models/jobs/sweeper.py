"""Keeps every job moving: no job stays ``running`` or ``queued`` forever.

Run periodically by each API process (every step is a compare-and-set, so several API replicas
sweeping at once do no harm):

- a running job whose worker went silent (no heartbeat within the lease) goes back to the queue
  and is re-sent, or ends failed when its attempts are spent, or cancelled when its cancel was
  asked (it must not train again);
- when the broker holds fewer messages than there are queued jobs (a Redis restarted without
  persistence, say), the queued jobs last sent more than a lease ago are re-sent; a duplicate
  loses its claim and does nothing;
- temporary upload files left by a crashed API are removed;
- workers silent for a day are forgotten (their slot reports, see ``models.jobs.turns``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models.data.store import LocalStore
from models.jobs import lifecycle
from models.settings import Settings
from models.tables import Job, WorkerSlots, utcnow

log = logging.getLogger(__name__)
FORGET_WORKERS = timedelta(days=1)


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    temp_files_removed: int = 0


def sweep(
    session: Session,
    settings: Settings,
    send: Callable[[str], None],
    broker_backlog: Callable[[], int | None],
) -> SweepReport:
    """One pass over unfinished jobs.

    Args:
        session: a database session (committed by the caller).
        settings: lease and attempt limits.
        send: re-sends a job id to the broker.
        broker_backlog: messages waiting in the broker's queue, or None if unknown.
    """
    report = SweepReport()
    cutoff = utcnow() - timedelta(seconds=settings.lease_seconds)
    # Each worker process reports its slots under its own name; forget those long gone.
    session.execute(delete(WorkerSlots).where(WorkerSlots.seen_at < utcnow() - FORGET_WORKERS))
    silent = session.scalars(
        select(Job).where(Job.status == "running", Job.heartbeat_at < cutoff)
    ).all()
    for job in silent:
        if job.cancel_requested:
            if lifecycle.cancel_lost(session, job):
                report.cancelled.append(job.id)
        elif job.attempts >= settings.max_attempts:
            lifecycle.fail_lost(session, job)
            report.failed.append(job.id)
        elif lifecycle.requeue_lost(session, job):
            report.requeued.append(job.id)
    session.commit()
    for job_id in report.requeued:
        send(job_id)
    # Only dispatched jobs have a message; the others wait their turn (models.jobs.turns).
    queued = session.execute(
        select(Job.id, Job.created_at, Job.heartbeat_at)
        .where(Job.status == "queued", Job.dispatched_at.is_not(None))
        .order_by(Job.created_at)
    ).all()
    backlog = broker_backlog()
    waiting = len(queued) - len(report.requeued)
    if backlog is not None and backlog < waiting:
        # Some messages are gone, but which? One sent within the lease may be on its way, or
        # reserved by a worker that is still starting: only older ones are presumed lost. A
        # duplicate is harmless anyway (it loses the claim); this only keeps them few.
        lost = [
            job_id
            for job_id, created_at, sent_at in queued
            if job_id not in report.requeued and _aware(sent_at or created_at) < cutoff
        ]
        if lost:
            log.warning(
                "broker holds %d messages for %d queued jobs: re-sending %d",
                backlog,
                waiting,
                len(lost),
            )
        for job_id in lost:
            if lifecycle.mark_sent(session, job_id):
                session.commit()
                send(job_id)
                report.resent.append(job_id)
    return report


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; they are UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def remove_stale_temp_files(store: LocalStore, max_age_seconds: float) -> int:
    """Delete upload and artifact temporaries older than ``max_age_seconds``."""
    now = time.time()
    removed = 0
    for path in [*store.root.glob("tmp/*"), *store.root.glob("*/*/.tmp-*")]:
        try:
            if now - path.stat().st_mtime >= max_age_seconds:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
