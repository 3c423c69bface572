"""Fair turns: which queued job goes to a worker next.

Jobs wait ``queued`` in the database, not in the broker. Whenever a worker has a free slot
the dispatcher picks the user with the fewest running jobs per unit of weight, then the one
with the least GPU time per unit of weight (decayed: an hour used a half-life ago counts half),
then the oldest job; a user at ``max_running`` gets no slot, even an idle one. The job is
marked dispatched and committed *before* it is sent, so a dispatcher that dies between the two
never sends a job twice (the sweeper re-sends a dispatched job whose message was lost).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from models.settings import Settings
from models.tables import Job, User, WorkerSlots, as_utc

DISPATCH_LOCK = 7370662
"""PostgreSQL advisory lock held by the one dispatcher at work."""


@dataclass(frozen=True)
class Turn:
    """One user waiting for a slot: what fair turns weigh."""

    owner: str | None
    weight: float
    running: int  # running, or dispatched and not yet claimed
    usage: float  # decayed GPU seconds
    oldest: datetime  # their oldest waiting job
    max_running: float = math.inf


def next_turn(turns: Iterable[Turn]) -> Turn | None:
    """The user whose job goes next, or None when every waiting user is at their cap."""
    eligible = [t for t in turns if t.running < t.max_running]
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda t: (t.running / t.weight, t.usage / t.weight, as_utc(t.oldest), t.owner or ""),
    )


def decayed(seconds: float, age: float, half_life: float) -> float:
    """``seconds`` of GPU time used ``age`` seconds ago, as it counts now."""
    return seconds * 0.5 ** (max(0.0, age) / half_life)


def free_slots(session: Session, settings: Settings, now: datetime) -> int:
    """Slots of live workers (heard from within the lease) less the jobs they hold."""
    alive = now - timedelta(seconds=settings.lease_seconds)
    slots = session.scalar(
        select(func.coalesce(func.sum(WorkerSlots.slots), 0)).where(WorkerSlots.seen_at >= alive)
    )
    busy = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(
            (Job.status == "running") | ((Job.status == "queued") & Job.dispatched_at.is_not(None))
        )
    )
    return int(slots or 0) - int(busy or 0)


def waiting_turns(session: Session, settings: Settings, now: datetime) -> list[Turn]:
    """Each user with a job waiting for a slot, and where they stand."""
    oldest = dict(
        session.execute(
            select(Job.owner, func.min(Job.created_at))
            .where(Job.status == "queued", Job.dispatched_at.is_(None))
            .group_by(Job.owner)
        ).all()
    )
    if not oldest:
        return []
    owners = list(oldest)
    running = dict(
        session.execute(
            select(Job.owner, func.count())
            .where(
                (Job.status == "running")
                | ((Job.status == "queued") & Job.dispatched_at.is_not(None))
            )
            .group_by(Job.owner)
        ).all()
    )
    half_life = settings.usage_half_life_seconds
    usage: dict[str | None, float] = {}
    horizon = now - timedelta(seconds=20 * half_life)  # older use counts for nothing
    named = [owner for owner in owners if owner is not None]
    of_waiting = Job.owner.in_(named) | (Job.owner.is_(None) if None in oldest else False)
    # With one user waiting there is no one to compare their usage with.
    for owner, started, finished in (
        ()
        if len(oldest) == 1
        else session.execute(
            select(Job.owner, Job.started_at, Job.finished_at).where(
                of_waiting,
                Job.started_at.is_not(None),
                Job.finished_at.is_(None) | (Job.finished_at > horizon),
            )
        )
    ):
        if owner not in oldest or started is None:
            continue
        end = as_utc(finished) if finished is not None else now
        seconds = max(0.0, (end - as_utc(started)).total_seconds())
        age = (now - end).total_seconds()
        usage[owner] = usage.get(owner, 0.0) + decayed(seconds, age, half_life)
    users = (
        {u.id: u for u in session.scalars(select(User).where(User.id.in_(named)))} if named else {}
    )
    turns = []
    for owner, first in oldest.items():
        user = users.get(owner) if owner else None
        cap = settings.max_running if user is None or user.max_running is None else user.max_running
        turns.append(
            Turn(
                owner,
                user.weight if user else 1.0,
                int(running.get(owner, 0)),
                usage.get(owner, 0.0),
                first,
                math.inf if owner is None else cap,
            )
        )
    return turns


def dispatch(
    session: Session, settings: Settings, send: Callable[[str], None], now: datetime
) -> list[str]:
    """Hand queued jobs to free worker slots in fair turns; returns the ids sent, in order.

    Each job is marked dispatched and committed before ``send``: a crash in between leaves a
    dispatched job whose message the sweeper re-sends, never a job sent twice.
    """
    waiting = select(Job.id).where(Job.status == "queued", Job.dispatched_at.is_(None))
    if session.scalar(waiting.limit(1)) is None:
        return []  # the usual case: a cheap read, no lock
    if session.get_bind().dialect.name == "postgresql":
        locked = session.scalar(text(f"SELECT pg_try_advisory_xact_lock({DISPATCH_LOCK})"))
        if not locked:
            return []  # another API process is dispatching
    sent: list[str] = []
    free = free_slots(session, settings, now)
    while free > 0:
        turn = next_turn(waiting_turns(session, settings, now))
        if turn is None:
            break
        job_id = session.scalar(
            select(Job.id)
            .where(
                Job.status == "queued",
                Job.dispatched_at.is_(None),
                Job.owner.is_(None) if turn.owner is None else Job.owner == turn.owner,
            )
            .order_by(Job.created_at, Job.id)
            .limit(1)
        )
        if job_id is None:
            break
        marked = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued", Job.dispatched_at.is_(None))
            .values(dispatched_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(marked, "rowcount", 0) != 1:
            continue
        sent.append(job_id)
        free -= 1
    session.commit()  # marked before sent; ends the advisory lock's transaction too
    for job_id in sent:
        send(job_id)
    return sent
