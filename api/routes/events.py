"""Live progress of a job as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import BigInteger, BindParameter, Row, func, literal, select
from starlette.types import Receive, Scope, Send

from api.deps import CurrentUser, SettingsDep
from api.schemas import MAX_EVENT_ID
from models.access import Principal, visible
from models.db import get_read_engine, read_errors, session_scope
from models.errors import InvalidRequest, TooManyRequests
from models.jobs import records
from models.jobs.event_signals import EventSignals
from models.settings import Settings
from models.tables import FINAL, Job, JobEvent

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
T = TypeVar("T")
every_job = APIRouter(prefix="/v1/events", tags=["jobs"])


# What a client resumes after: an event id it was sent. The schema's pattern is what every
# such id matches (any 18 digits are below MAX_EVENT_ID); _event_id() checks the real bound.
LastEventId = Annotated[
    str,
    Header(
        description="The id of the last event received, to resume after it.",
        json_schema_extra={"pattern": "^[0-9]{1,18}$"},
    ),
]

# The same as a query parameter (`?after=`), for clients that cannot set headers.
After = Annotated[
    int | None, Query(ge=0, le=MAX_EVENT_ID, description="Resume after this event id.")
]

# Events replayed per read: a late reader of a long job gets them page by page.
EVENTS_PAGE = 500


def _event_bound(after: int) -> BindParameter[int]:
    """``after`` as a 64-bit parameter: PostgreSQL's event ids are 32-bit, and a bound cast to
    their type (``::INTEGER``) past 2**31 - 1 failed the query after the stream had begun."""
    return literal(after, BigInteger)


def _read(settings: Settings, job_id: str, after: int) -> tuple[str | None, list[Row[Any]]]:
    """The job's status and a page of its events after ``after``: two reads on the API's read
    engine.

    The status is read first: a final status was committed together with its event, so the
    events read next include it (on a later page, when there are more than ``EVENTS_PAGE``).
    """
    with read_errors(), get_read_engine(settings.database_url).connect() as connection:
        status = connection.scalar(select(Job.status).where(Job.id == job_id))
        rows = connection.execute(
            select(JobEvent.id, JobEvent.type, JobEvent.data)
            .where(JobEvent.job_id == job_id, JobEvent.id > _event_bound(after))
            .order_by(JobEvent.id)
            .limit(EVENTS_PAGE)
        ).all()
    return status, list(rows)


def _frame(event_id: int | None, kind: str, data: dict[str, Any]) -> str:
    # Without an id line the client's last event id stays that of the last stored event.
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _with_retry(frames: AsyncGenerator[str]) -> AsyncIterator[str]:
    """An event stream's frames, after the reconnection delay a client should use."""
    yield "retry: 2000\n\n"
    async with aclosing(frames):
        async for frame in frames:
            yield frame


class _EventStream(StreamingResponse):
    """An event stream that gives back its place among the open ones however it ends: done,
    the client gone, or never started (a client that left before the first byte)."""

    def __init__(self, streams: OpenStreams, frames: AsyncGenerator[str]) -> None:
        super().__init__(
            _with_retry(frames),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.streams.release()


async def _frames(
    request: Request, settings: Settings, job_id: str, after: int
) -> AsyncGenerator[str]:
    """The job's events after ``after``, read again whenever the job may have new ones (see
    ``models.jobs.event_signals``) or its poll period has passed, until it ends."""
    last_write = time.monotonic()
    signals: EventSignals = request.app.state.event_signals
    async with signals.changes(job_id) as changed:
        while True:
            changed.clear()  # before the read: a change committed after it wakes the wait
            status, rows = await run_in_threadpool(_read, settings, job_id, after)
            for row in rows:
                yield _frame(row.id, row.type, row.data)
                after = row.id
                last_write = time.monotonic()
            if len(rows) == EVENTS_PAGE:
                continue  # more to replay before anything else
            if status is None:
                yield _frame(None, "deleted", {"status": "deleted"})  # not a stored event
                return
            if status in FINAL:
                return
            if time.monotonic() - last_write >= settings.events_heartbeat_seconds:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()
            if await request.is_disconnected():
                return
            with suppress(TimeoutError):
                async with asyncio.timeout(signals.poll_seconds(settings.events_poll_seconds)):
                    await changed.wait()


def _event_id(header: str) -> int:
    """``Last-Event-ID`` as an event id: ASCII digits (``str.isdigit`` takes "²" and "٣")."""
    if re.fullmatch(r"[0-9]{1,19}", header) and int(header) <= MAX_EVENT_ID:
        return int(header)
    raise InvalidRequest(
        "The header `Last-Event-ID` must be the id of an event of this stream: a whole number "
        f"from 0 to {MAX_EVENT_ID}, as sent in its `id:` line. Reconnect without the header to "
        f"replay from the start. Received: {header[:40]!r}.",
        field="Last-Event-ID",
    )


@dataclass
class OpenStreams:
    """Event streams open in this API process (``app.state.event_streams``): each holds a
    connection, a database read per change and a listener, so they are bounded."""

    count: int = 0

    def take(self, limit: int) -> bool:
        """Count one more open stream if there is room for it.

        The check and the count happen with no ``await`` between them, on the process's one
        event loop, so streams opened at the same moment can never pass ``limit`` together:
        counting a stream only once it started let every request between its check and its
        first frame through.
        """
        if self.count >= limit:
            return False
        self.count += 1
        return True

    def release(self) -> None:
        self.count -= 1


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"description": "REMOTEFIT_MAX_EVENT_STREAMS streams are open already."},
    },
)
async def job_events(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    who: CurrentUser,
    last_event_id: LastEventId = "",
    after: After = None,
) -> StreamingResponse:
    """Live progress as Server-Sent Events: status, epochs, batches, evaluation; then it ends.

    Each event has an id; reconnecting with `Last-Event-ID` (as `EventSource` does) or
    `?after=` resumes right after it. A late subscriber first gets everything it missed.
    """

    def check() -> None:
        with session_scope(settings.database_url) as session:
            records.get(session, job_id, who)

    start = _event_id(last_event_id) if last_event_id else after or 0
    return await open_stream(
        request, settings, check, lambda _: _frames(request, settings, job_id, start)
    )


async def open_stream(
    request: Request,
    settings: Settings,
    prepare: Callable[[], T],
    frames: Callable[[T], AsyncGenerator[str]],
) -> StreamingResponse:
    """An event stream: its place among the open ones taken (a 429 past the bound), then
    ``prepare`` run on a thread (the owner's check), then ``frames`` of what it returned.

    A request that ``prepare`` refuses (a 404, a 503) holds no place; a stream gives its place
    back however it ends.
    """
    streams = _take_stream_room(request, settings)
    try:
        prepared = await run_in_threadpool(prepare)
    except BaseException:
        streams.release()
        raise
    return _EventStream(streams, frames(prepared))


def _take_stream_room(request: Request, settings: Settings) -> OpenStreams:
    """Count a new stream, or refuse it past REMOTEFIT_MAX_EVENT_STREAMS open in this process
    (429). The caller gives the place back if it does not return the stream after all."""
    streams: OpenStreams = request.app.state.event_streams
    if not streams.take(settings.max_event_streams):
        raise TooManyRequests(
            f"This server already has {streams.count} event streams open, its limit "
            f"(REMOTEFIT_MAX_EVENT_STREAMS={settings.max_event_streams}). Close a stream, or "
            "poll `GET /v1/jobs/{id}` instead; reconnecting later with `Last-Event-ID` misses "
            "nothing.",
            limit=settings.max_event_streams,
        )
    return streams


def _last_event_id(settings: Settings) -> int:
    with read_errors(), get_read_engine(settings.database_url).connect() as connection:
        return int(connection.scalar(select(func.max(JobEvent.id))) or 0)


def _read_all(settings: Settings, after: int, who: Principal) -> tuple[int, list[Row[Any]]]:
    """The events of ``who``'s jobs after ``after``, oldest first, at most EVENTS_PAGE."""
    query = select(JobEvent.id, JobEvent.job_id, JobEvent.type, JobEvent.data).join(
        Job, Job.id == JobEvent.job_id
    )
    with read_errors(), get_read_engine(settings.database_url).connect() as connection:
        rows = connection.execute(
            visible(query, Job, who)
            .where(JobEvent.id > _event_bound(after))
            .order_by(JobEvent.id)
            .limit(EVENTS_PAGE)
        ).all()
    return (rows[-1].id if rows else after), list(rows)


async def _frames_all(
    request: Request, settings: Settings, after: int, who: Principal
) -> AsyncGenerator[str]:
    last_write = time.monotonic()
    while not await request.is_disconnected():
        after, rows = await run_in_threadpool(_read_all, settings, after, who)
        for row in rows:
            yield _frame(row.id, row.type, {"job": row.job_id, **row.data})
            last_write = time.monotonic()
        if time.monotonic() - last_write >= settings.events_heartbeat_seconds:
            yield ": keep-alive\n\n"
            last_write = time.monotonic()
        if len(rows) < EVENTS_PAGE:
            await asyncio.sleep(settings.events_poll_seconds)


@every_job.get(
    "",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def all_job_events(
    request: Request,
    settings: SettingsDep,
    who: CurrentUser,
    last_event_id: LastEventId = "",
    after: After = None,
) -> StreamingResponse:
    """The events of every job of the caller from now on, each with its `job` id: one stream
    for a whole list.

    It never ends by itself. Reconnecting with `Last-Event-ID` or `?after=` resumes after it.
    """
    given = _event_id(last_event_id) if last_event_id else after

    def start() -> int:
        # Without one, from now on: what is committed after this request was received.
        return _last_event_id(settings) if given is None else given

    return await open_stream(
        request, settings, start, lambda first: _frames_all(request, settings, first, who)
    )
