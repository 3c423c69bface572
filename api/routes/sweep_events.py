"""Live progress of a sweep as Server-Sent Events: each trial's start, epochs and end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from api.deps import CurrentUser, SettingsDep
from api.routes.events import (
    EVENTS_PAGE,
    After,
    LastEventId,
    _event_bound,
    _event_id,
    _frame,
    open_stream,
)
from models.db import get_read_engine, read_errors, session_scope
from models.settings import Settings
from models.sweeps import records, sampling
from models.sweeps.records import SWEEP_FINAL
from models.tables import FINAL, Job, JobEvent, Sweep, Trial

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


def _read(settings: Settings, sweep_id: str, after: int, metric: str) -> tuple[Any, list[str]]:
    """The sweep's status, whether trials still run, and its trials' events after ``after``
    as frames (the status first: an end committed before it is in the events read after)."""
    with read_errors(), get_read_engine(settings.database_url).connect() as connection:
        status = connection.scalar(select(Sweep.status).where(Sweep.id == sweep_id))
        running = connection.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.sweep == sweep_id, Job.status.not_in(FINAL))
        )
        rows = connection.execute(
            select(JobEvent.id, JobEvent.job_id, JobEvent.type, JobEvent.data, Trial.number)
            .join(Trial, Trial.job_id == JobEvent.job_id)
            .where(
                Trial.sweep_id == sweep_id,
                JobEvent.id > _event_bound(after),
                JobEvent.type.in_(("status", "epoch")),
            )
            .order_by(JobEvent.id)
            .limit(EVENTS_PAGE)
        ).all()
        frames = []
        for row in rows:
            data: dict[str, Any] = {"number": row.number, "job": row.job_id, **row.data}
            if row.type == "status" and row.data.get("status") in FINAL:
                history = connection.scalar(select(Job.history).where(Job.id == row.job_id))
                data["value"] = sampling.objective_value(history or {}, metric)
            kind = "trial" if row.type == "status" else "epoch"
            frames.append(_frame(row.id, kind, data))
        last = rows[-1].id if rows else after
    return (status, running, last, len(rows)), frames


async def _frames(
    request: Request, settings: Settings, sweep_id: str, after: int, metric: str
) -> AsyncGenerator[str]:
    last_write = time.monotonic()
    while True:
        (status, running, after, count), frames = await run_in_threadpool(
            _read, settings, sweep_id, after, metric
        )
        for frame in frames:
            yield frame
            last_write = time.monotonic()
        if count == EVENTS_PAGE:
            continue
        if status is None:
            yield _frame(None, "deleted", {"status": "deleted"})
            return
        if status in SWEEP_FINAL and not running:
            yield _frame(None, "sweep", {"status": status})
            return
        if time.monotonic() - last_write >= settings.events_heartbeat_seconds:
            yield ": keep-alive\n\n"
            last_write = time.monotonic()
        if await request.is_disconnected():
            return
        await asyncio.sleep(settings.events_poll_seconds)


@router.get(
    "/{sweep_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"description": "REMOTEFIT_MAX_EVENT_STREAMS streams are open already."},
    },
)
async def sweep_events(
    sweep_id: str,
    request: Request,
    settings: SettingsDep,
    who: CurrentUser,
    last_event_id: LastEventId = "",
    after: After = None,
) -> StreamingResponse:
    """The sweep's trials as Server-Sent Events: `trial` (each status: queued, running, and
    the end with its `value`), `epoch` (each trial's Keras logs); a last `sweep` event says
    how it ended. `Last-Event-ID` or `?after=` resumes with no gap."""

    def check() -> str:
        with session_scope(settings.database_url) as session:
            sweep = records.get(session, sweep_id, who)
            return str((sweep.spec.get("objective") or {}).get("metric", "loss"))

    start = _event_id(last_event_id) if last_event_id else after or 0
    return await open_stream(
        request, settings, check, lambda metric: _frames(request, settings, sweep_id, start, metric)
    )
