"""The workers: which are alive, what each trains on, and what it runs now.

A worker is one ``remotefit worker`` (or the worker of ``remotefit serve``): a Celery parent
process, named ``host:pid`` here, and the pool process it forks to train. The parent reports
its slots every few seconds (``report_slots``); the pool process reports the devices it trains
on once it has imported TensorFlow (``report_devices``). Each job records the worker that ran it
last (``Job.node``) and on what (``Job.ran_on``). A worker not heard from within the lease has
stopped (killed, unplugged) and drops out of the list.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.settings import Settings
from models.tables import FINAL, Job, WorkerSlots, as_utc


def _upsert(session: Session, worker: str, new: dict[str, Any], changed: dict[str, Any]) -> None:
    """Insert the worker's row with ``new``, or set ``changed`` on it: its parent and its pool
    process report at once, each from its own process, and either may come first."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(WorkerSlots).values(worker=worker, **new)
    session.execute(
        statement.on_conflict_do_update(index_elements=[WorkerSlots.worker], set_=changed)
    )


def report_slots(
    session: Session,
    worker: str,
    slots: int,
    now: datetime,
    name: str | None = None,
    host: str | None = None,
) -> None:
    """A worker's heartbeat: it has ``slots`` training slots (0 as it stops)."""
    changed: dict[str, Any] = {"slots": slots, "seen_at": now}
    if name is not None:
        changed["name"] = name
    if host is not None:
        changed["host"] = host
    _upsert(session, worker, {**changed, "started_at": now}, changed)


def report_devices(session: Session, worker: str, devices: list[dict[str, Any]]) -> None:
    """What the worker's pool process trains on; a row it makes counts no slot until its
    parent's heartbeat."""
    _upsert(session, worker, {"slots": 0, "devices": devices}, {"devices": devices})


def summary(devices: list[dict[str, Any]] | None) -> str:
    """``2x NVIDIA H200 (141 GiB)`` or ``CPU x86_64 (16 cores)``: devices, in a few words."""
    if not devices:
        return "devices not reported yet"
    names = []
    for device in devices:
        size, cores = device.get("memory_bytes"), device.get("cores")
        detail = f" ({size / 2**30:.0f} GiB)" if size else f" ({cores} cores)" if cores else ""
        names.append(f"{'CPU ' if device.get('kind') == 'CPU' else ''}{device.get('name')}{detail}")
    return ", ".join(
        f"{names.count(n)}x {n}" if names.count(n) > 1 else n for n in dict.fromkeys(names)
    )


def live(session: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Each worker heard from within the lease: name, host, devices, idle or busy (and with
    which job), jobs done, last heartbeat; by name."""
    alive = now - timedelta(seconds=settings.lease_seconds)
    rows = list(
        session.scalars(
            select(WorkerSlots)
            .where(WorkerSlots.seen_at >= alive, WorkerSlots.slots > 0)
            .order_by(WorkerSlots.name, WorkerSlots.worker)
        )
    )
    ids = [row.worker for row in rows]
    running: dict[str | None, list[str]] = {}
    done: dict[str | None, int] = {}
    if ids:
        for node, job_id in session.execute(
            select(Job.node, Job.id)
            .where(Job.node.in_(ids), Job.status == "running")
            .order_by(Job.started_at)
        ):
            running.setdefault(node, []).append(job_id)
        done = {
            node: int(count)
            for node, count in session.execute(
                select(Job.node, func.count())
                .where(Job.node.in_(ids), Job.status.in_(FINAL))
                .group_by(Job.node)
            )
        }
    return [
        {
            "id": row.worker,
            "name": row.name or row.worker,
            "host": row.host or row.worker.rpartition(":")[0],
            "devices": row.devices,
            "summary": summary(row.devices),
            "slots": row.slots,
            "state": "busy" if running.get(row.worker) else "idle",
            "job": next(iter(running.get(row.worker, [])), None),
            "jobs": running.get(row.worker, []),
            "jobs_done": done.get(row.worker, 0),
            "started_at": as_utc(row.started_at) if row.started_at else None,
            "last_heartbeat": as_utc(row.seen_at),
        }
        for row in rows
    ]
