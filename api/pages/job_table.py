"""The jobs list's query: filter, sort and page in SQL, with each queued job's place in line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, defer

from models.access import Principal, visible
from models.jobs import records
from models.tables import Job

PAGE_SIZE = 50
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "pruned")
SORTS = {
    "submitted": Job.created_at,
    "name": Job.name,
    "status": Job.status,
    "started": Job.started_at,
}


@dataclass
class Query:
    """What the list shows, as the query string says it: every field has a safe default."""

    status: str = ""
    name: str = ""
    sort: str = "-submitted"
    page: int = 1

    @classmethod
    def of(cls, params: dict[str, str]) -> Query:
        status = params.get("status", "")
        sort = params.get("sort", "-submitted")
        page = params.get("page", "1")
        return cls(
            status=status if status in STATUSES else "",
            name=params.get("name", "")[:255],
            sort=sort if sort.lstrip("-") in SORTS else "-submitted",
            page=max(int(page), 1) if page.isdigit() else 1,
        )

    def link(self, **changes: Any) -> str:
        """The list's URL with ``changes``: only what differs from the defaults is written."""
        values = {**self.__dict__, **changes}
        default = Query()
        kept = {k: v for k, v in values.items() if v and v != getattr(default, k)}
        return "/?" + urlencode(kept) if kept else "/"


@dataclass
class Row:
    job: Job
    progress: dict[str, Any]
    duration: float | None
    last: dict[str, float | None] = field(default_factory=dict)
    queue_position: int | None = None


def _filtered(query: Query, statement: Select[Any]) -> Select[Any]:
    if query.status:
        statement = statement.where(Job.status == query.status)
    if query.name:
        pattern = "%" + query.name.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        statement = statement.where(Job.name.ilike(pattern + "%", escape="\\"))
    return statement


def page(session: Session, query: Query, who: Principal) -> tuple[list[Row], int]:
    """The rows of ``query``'s page of ``who``'s jobs and the number of them that match it."""
    column = SORTS[query.sort.lstrip("-")]
    order = column.desc() if query.sort.startswith("-") else column.asc()
    statement = visible(_filtered(query, select(Job).options(defer(Job.spec))), Job, who)
    jobs = session.scalars(
        statement.order_by(order, Job.created_at.desc(), Job.id)
        .limit(PAGE_SIZE)
        .offset((query.page - 1) * PAGE_SIZE)
    ).all()
    counted = visible(_filtered(query, select(func.count()).select_from(Job)), Job, who)
    total = int(session.scalar(counted) or 0)
    positions = _queue_positions(session, [job.id for job in jobs if job.status == "queued"])
    rows = []
    for job in jobs:
        history = job.history or {}
        last = {key: (history.get(key) or [None])[-1] for key in ("loss", "val_loss")}
        rows.append(
            Row(
                job=job,
                progress=job.progress or {},
                duration=_running_seconds(job),
                last=last,
                queue_position=positions.get(job.id),
            )
        )
    return rows, total


def _queue_positions(session: Session, ids: list[str]) -> dict[str, int]:
    """Each of ``ids``' place among the queued jobs, oldest first (1 is next)."""
    if not ids:
        return {}
    line = (
        select(Job.id, func.row_number().over(order_by=(Job.created_at, Job.id)).label("place"))
        .where(Job.status == "queued")
        .subquery()
    )
    found = session.execute(select(line.c.id, line.c.place).where(line.c.id.in_(ids))).all()
    return {job_id: int(place) for job_id, place in found}


def _running_seconds(job: Job) -> float | None:
    if job.started_at is None:
        return None
    end = records.as_utc(job.finished_at) if job.finished_at else datetime.now(UTC)
    return (end - records.as_utc(job.started_at)).total_seconds()
