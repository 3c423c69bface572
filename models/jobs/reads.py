"""One job, read for ``GET /v1/jobs/{id}``, the route every client polls.

Through SQLAlchemy in the thread pool, the hop to a thread and the ORM cost several times the
CPU of the query itself, and the API serves every request from one process. On PostgreSQL the
row is therefore read on the event loop with psycopg's async driver, concurrent requests share
a query, and a job whose row has not changed since it was last rendered (every finished job, a
running one between two heartbeats) is answered with the same bytes: its JSON columns are
fetched undecoded and compared as they came. On SQLite (the embedded default) a thread still
reads it, with SQLAlchemy Core, since SQLite has no async driver and its reads are local.

The columns and the SQL come from ``models.tables``, so the schema is written once.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

from psycopg import AsyncConnection, OperationalError
from psycopg.types.json import set_json_loads
from sqlalchemy import JSON, any_, bindparam, select
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from models.access import Principal
from models.db import get_engine, get_read_engine, postgres_conninfo, read_errors, unavailable
from models.errors import ServiceUnavailable
from models.jobs.records import not_found
from models.tables import Job


@dataclass(frozen=True, slots=True)
class JobRow:
    """The columns of a job that its API view shows, as a single read returns them."""

    id: str
    name: str | None
    status: str
    attempts: int
    worker: str | None
    ran_on: dict[str, Any] | None
    progress: dict[str, Any]
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    artifacts: list[Any]
    history: dict[str, Any]
    evaluation: dict[str, Any] | None
    owner: str | None
    sweep: str | None


_TABLE = Job.__table__
_COLUMNS = [_TABLE.c[field.name] for field in fields(JobRow)]
_QUERY = select(*_COLUMNS).where(_TABLE.c.id == bindparam("id"))
_BATCH_QUERY = select(*_COLUMNS).where(_TABLE.c.id == any_(bindparam("ids")))
_OWNER = [field.name for field in fields(JobRow)].index("owner")
_JSON_FIELDS = frozenset(i for i, column in enumerate(_COLUMNS) if isinstance(column.type, JSON))

RawRow = tuple[Any, ...]
"""A row as PostgreSQL sent it, JSON columns as undecoded bytes: cheap to compare."""


def _undecoded(data: str | bytes) -> str | bytes:
    return data


def _decode(raw: RawRow) -> JobRow:
    return JobRow(
        *(
            json.loads(value) if index in _JSON_FIELDS and value is not None else value
            for index, value in enumerate(raw)
        )
    )


Render = Callable[[JobRow], bytes]
Waiting = tuple["asyncio.Future[bytes]", Principal]
"""A request waiting for a read, and its caller."""


class JobReader(Protocol):
    """Reads a job and renders it (as the API's response body), once per row read."""

    async def read(self, job_id: str, who: Principal) -> bytes:
        """The job, rendered; ``JobNotFound`` if there is none or it is not ``who``'s to see,
        ``ServiceUnavailable`` if the database cannot answer."""

    async def close(self) -> None: ...


class ThreadedReader:
    """SQLAlchemy Core in the thread pool: for SQLite and any database without a fast path."""

    def __init__(self, database_url: str, render: Render) -> None:
        self.engine = get_read_engine(database_url)
        self.render = render

    def _read(self, job_id: str, who: Principal) -> bytes:
        with read_errors(), self.engine.connect() as connection:
            row = connection.execute(_QUERY, {"id": job_id}).first()
        if row is None or not who.sees(row[_OWNER]):
            raise not_found(job_id)
        return self.render(JobRow(**row._mapping))

    async def read(self, job_id: str, who: Principal) -> bytes:
        return await run_in_threadpool(self._read, job_id, who)

    async def close(self) -> None:
        pass


class PostgresReader:
    """psycopg's async driver on the event loop, reading in batches.

    Requests that arrive while a read is in flight wait for the next one, which fetches every
    job they asked for in one query (``id = ANY(...)``); so a burst of polls costs a few
    queries, and each request is still answered by a read that began after it arrived (a
    client sees its own writes). One query is in flight at a time, on one connection, which
    reconnects after a failure. Each row is rendered once, however many requests asked for it,
    and not again while it stays the same: the last rendering of recently read jobs is kept
    (up to ``keep_bytes`` of rows and renderings, least recently read out first).
    """

    def __init__(
        self,
        database_url: str,
        render: Render,
        timeout_s: float = 30,
        keep_bytes: int = 64 * 1024**2,
    ) -> None:
        get_engine(database_url)  # the tables exist
        self.conninfo = postgres_conninfo(database_url)
        self.sql = str(_BATCH_QUERY.compile(dialect=pg_dialect.dialect()))
        self.render = render
        self.timeout_s = timeout_s
        self._connection: Any = None
        self._waiting: dict[str, list[Waiting]] = {}
        self._reading: asyncio.Task[None] | None = None
        self._rendered: OrderedDict[str, tuple[RawRow, bytes, int]] = OrderedDict()
        self._rendered_bytes = 0
        self._keep_bytes = keep_bytes

    async def read(self, job_id: str, who: Principal) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, []).append((future, who))
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_batches())
        return await future

    async def _read_batches(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                rows: dict[str, RawRow] = {}
                failure: Exception | None = None
                try:
                    async with asyncio.timeout(self.timeout_s):
                        rows = await self._fetch(list(batch))
                except asyncio.CancelledError:
                    await self._disconnect()
                    self._answer(batch, rows, ServiceUnavailable("The API is shutting down."))
                    raise
                except Exception as error:
                    await self._disconnect()
                    reason = "no answer in time" if isinstance(error, TimeoutError) else error
                    failure = unavailable(reason)
                self._answer(batch, rows, failure)
        finally:
            self._reading = None

    def _answer(
        self,
        batch: dict[str, list[Waiting]],
        rows: dict[str, RawRow],
        failure: Exception | None,
    ) -> None:
        """Answer every request of ``batch``; each job is rendered once, if it changed."""
        for job_id, futures in batch.items():
            waiting = [(f, who) for f, who in futures if not f.done()]  # others went away
            if not waiting:
                continue
            answer: bytes | Exception
            row = rows.get(job_id)
            if failure is not None:
                answer = failure
            elif row is None:
                answer = not_found(job_id)
            else:
                try:
                    answer = self._rendering(job_id, row)
                except Exception as error:  # a bug: fail these requests, not the reader
                    answer = error
            for future, who in waiting:
                if row is not None and failure is None and not who.sees(row[_OWNER]):
                    future.set_exception(not_found(job_id))  # as if it did not exist
                elif isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def _rendering(self, job_id: str, row: RawRow) -> bytes:
        """The job's body: the one kept if its row is unchanged, else rendered and kept."""
        kept = self._rendered.get(job_id)
        if kept is not None:
            if kept[0] == row:
                self._rendered.move_to_end(job_id)
                return kept[1]
            del self._rendered[job_id]
            self._rendered_bytes -= kept[2]
        body = self.render(_decode(row))
        size = len(body) + sum(len(value) for value in row if isinstance(value, bytes | str))
        self._rendered[job_id] = (row, body, size)
        self._rendered_bytes += size
        while self._rendered_bytes > self._keep_bytes:
            _, (_, _, dropped) = self._rendered.popitem(last=False)
            self._rendered_bytes -= dropped
        return body

    async def _fetch(self, ids: list[str]) -> dict[str, RawRow]:
        """The rows of ``ids``; a connection gone stale (a database restart) is replaced once."""
        if self._connection is not None:
            try:
                return await self._query(ids)
            except OperationalError:
                await self._disconnect()
        self._connection = await AsyncConnection.connect(self.conninfo, autocommit=True)
        set_json_loads(_undecoded, self._connection)  # decoded only when a row changed
        return await self._query(ids)

    async def _query(self, ids: list[str]) -> dict[str, RawRow]:
        cursor = await self._connection.execute(self.sql, {"ids": ids}, prepare=True, binary=True)
        return {row[0]: row for row in await cursor.fetchall()}  # JobRow's first field: id

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with suppress(asyncio.CancelledError):
                await self._reading
        await self._disconnect()


def job_reader(database_url: str, render: Render) -> JobReader:
    """The fastest reader this database allows."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresReader(database_url, render)
    return ThreadedReader(database_url, render)
