"""Quotas per user: what each allows, what is in use, and the refusal when one would pass.

Storage counts a user's datasets and the artifacts of their finished jobs.

``max_queued`` and ``max_storage`` refuse (a 429, nothing created); ``max_running`` never
does: the dispatcher leaves a user's further jobs queued until one of theirs ends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.access import Principal
from models.errors import QuotaExceeded
from models.settings import Settings
from models.tables import Dataset, Job, User


def limits(user: User, settings: Settings) -> dict[str, int]:
    """Each quota of ``user``: their own, or the settings' default."""
    return {
        "max_running": _own(user.max_running, settings.max_running),
        "max_queued": _own(user.max_queued, settings.max_queued),
        "max_storage": _own(user.max_storage, settings.max_storage),
        "max_job_seconds": _own(user.max_job_seconds, settings.max_job_seconds),
    }


def _own(value: int | None, default: int) -> int:
    return default if value is None else value


def usage(session: Session, user_id: str) -> dict[str, int]:
    """What ``user_id`` has: running and queued jobs, bytes stored."""
    counts = dict(
        session.execute(
            select(Job.status, func.count())
            .where(Job.owner == user_id, Job.status.in_(("queued", "running")))
            .group_by(Job.status)
        ).all()
    )
    datasets = session.scalar(
        select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(Dataset.owner == user_id)
    )
    artifacts = session.scalar(
        select(func.coalesce(func.sum(Job.artifact_bytes), 0)).where(Job.owner == user_id)
    )
    stored = int(datasets or 0) + int(artifacts or 0)
    return {
        "max_running": int(counts.get("running", 0)),
        "max_queued": int(counts.get("queued", 0)),
        "max_storage": int(stored or 0),
        "max_job_seconds": 0,  # a limit per job, not a total
    }


def report(session: Session, user: User, settings: Settings) -> dict[str, dict[str, int]]:
    """Each quota with its limit and current use, as ``GET /v1/me`` shows them."""
    used = usage(session, user.id)
    return {
        name: {"limit": limit, "used": used[name]} for name, limit in limits(user, settings).items()
    }


def _refuse(quota: str, limit: int, used: int, adding: int, hint: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"Quota `{quota}` would be exceeded: the limit is {limit} and {used} is in use "
        f"(this request adds {adding}). {hint} Received: {quota} use {used + adding} > {limit}.",
        quota=quota,
        limit=limit,
        used=used,
    )


def _user(session: Session, who: Principal) -> User | None:
    return None if who.user_id is None else session.get(User, who.user_id)


def check_submit(
    session: Session, who: Principal, settings: Settings, time_limit_s: int | None
) -> int | None:
    """Refuse a job submitted over ``max_queued`` or asking for more than ``max_job_seconds``.

    Returns:
        The job's time limit: its own, or the user's longest job when that is shorter than
        the server's default.

    Raises:
        QuotaExceeded: the user has ``max_queued`` jobs waiting already, or the job asks for
            a longer time limit than the user's.
    """
    user = _user(session, who)
    if user is None:
        return time_limit_s
    allowed = limits(user, settings)
    used = usage(session, user.id)["max_queued"]
    if used + 1 > allowed["max_queued"]:
        raise _refuse(
            "max_queued",
            allowed["max_queued"],
            used,
            1,
            "Wait for queued jobs to start, or cancel some.",
        )
    longest = allowed["max_job_seconds"]
    if time_limit_s is not None and time_limit_s > longest:
        raise QuotaExceeded(
            f"Quota `max_job_seconds` would be exceeded: this user's jobs may run {longest} s "
            f"at most. Ask for a shorter `time_limit_s`, or fewer epochs. Received: "
            f"time_limit_s={time_limit_s}.",
            quota="max_job_seconds",
            limit=longest,
            used=time_limit_s,
        )
    if time_limit_s is None and longest < settings.job_seconds:
        return longest
    return time_limit_s


def check_storage(session: Session, who: Principal, settings: Settings, adding: int) -> None:
    """Refuse ``adding`` bytes that would take the user over ``max_storage``.

    Raises:
        QuotaExceeded: the bytes do not fit.
    """
    user = _user(session, who)
    if user is None:
        return
    limit = limits(user, settings)["max_storage"]
    used = usage(session, user.id)["max_storage"]
    if used + adding > limit:
        raise _refuse("max_storage", limit, used, adding, "Delete datasets you no longer need.")


def for_me(session: Session, who: Principal, settings: Settings) -> dict[str, Any]:
    """The body of ``GET /v1/me``."""
    user = _user(session, who)
    quotas = {} if user is None else report(session, user, settings)
    return {
        "name": who.name,
        "admin": who.admin,
        "scopes": sorted(who.scopes),
        "quotas": quotas,
        "weight": None if user is None else user.weight,
    }
