"""Waking a job's event streams when it has new events, instead of after their next poll.

An SSE stream reads its job's new events, then waits before reading again. On PostgreSQL every
transaction that adds a job event also notifies the channel ``remotefit_events`` with the job's
id (``jobs.add_event``); PostgreSQL delivers it when the transaction commits, so whoever wakes
reads what was committed. The API listens on one connection and wakes the streams of that job:
a job's end reaches its client in milliseconds instead of up to a poll period later, and
nobody polls faster to get there. Polling stays as the floor: on SQLite, and while the
listening connection is down, a stream reads again after ``events_poll_seconds``; while it is
up, only every ``LIVE_POLL_SECONDS``, in case a notification were ever lost (each read of a
stream costs the API a query: at 0.2 s, a 7 s job's stream took 0.19 CPU-s of it).

The same connection counts the notifications of other channels it is asked to (``counted``):
the API's memory of valid tokens listens for revocations there (``api.token_memory``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

from psycopg import AsyncConnection
from sqlalchemy.engine import make_url

from models.db import postgres_conninfo

CHANNEL = "remotefit_events"
RECONNECT_SECONDS = 1.0
LIVE_POLL_SECONDS = 5.0

log = logging.getLogger(__name__)


class EventSignals(Protocol):
    def changes(self, job_id: str) -> Any:
        """``async with signals.changes(job_id) as changed``: ``changed`` (an asyncio.Event)
        is set whenever the job may have new events; clear it before each read."""

    def poll_seconds(self, fallback: float) -> float:
        """How long a stream may wait for ``changed`` before it reads anyway."""

    def start(self) -> None:
        """Listen from now on, not from the first stream (where something is ``counted``)."""

    def count(self, channel: str) -> int | None:
        """Notifications heard on ``channel`` (and reconnections), or None while not listening:
        unknown, since one may be missed."""

    async def close(self) -> None: ...


class PollOnly:
    """No signals: streams wake on their poll period alone (SQLite)."""

    @asynccontextmanager
    async def changes(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        yield asyncio.Event()

    def poll_seconds(self, fallback: float) -> float:
        return fallback

    def start(self) -> None:
        pass

    def count(self, channel: str) -> int | None:
        return None

    async def close(self) -> None:
        pass


class PostgresSignals:
    """One ``LISTEN`` connection, started with the first stream, reconnecting when it breaks."""

    def __init__(self, database_url: str, counted: tuple[str, ...] = ()) -> None:
        self.conninfo = postgres_conninfo(database_url)
        self._changed: dict[str, set[asyncio.Event]] = {}
        self._listening: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # the listener is live: streams may poll slowly
        self.counts = dict.fromkeys(counted, 0)

    def start(self) -> None:
        if self._listening is None:
            self._listening = asyncio.create_task(self._listen(), name="event-signals")

    def count(self, channel: str) -> int | None:
        return self.counts[channel] if self.connected.is_set() else None

    @asynccontextmanager
    async def changes(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        self.start()
        changed = asyncio.Event()
        self._changed.setdefault(job_id, set()).add(changed)
        try:
            yield changed
        finally:
            waiting = self._changed.get(job_id, set())
            waiting.discard(changed)
            if not waiting:
                self._changed.pop(job_id, None)

    def poll_seconds(self, fallback: float) -> float:
        return max(fallback, LIVE_POLL_SECONDS) if self.connected.is_set() else fallback

    async def _listen(self) -> None:
        while True:
            try:
                connection = await AsyncConnection.connect(self.conninfo, autocommit=True)
            except Exception as error:
                log.warning("event signals: cannot connect (%s); streams poll meanwhile", error)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                for channel in (CHANNEL, *self.counts):
                    await connection.execute(f"LISTEN {channel}")
                for channel in self.counts:
                    self.counts[channel] += 1  # a change may have gone unheard meanwhile
                self.connected.set()
                self._wake_all()  # anything committed while no one listened
                async for notice in connection.notifies():
                    if notice.channel in self.counts:
                        self.counts[notice.channel] += 1
                        continue
                    for changed in self._changed.get(notice.payload, ()):
                        changed.set()
            except Exception as error:
                log.warning("event signals: connection lost (%s); reconnecting", error)
            finally:
                self.connected.clear()
                with suppress(Exception):
                    await connection.close()
            await asyncio.sleep(RECONNECT_SECONDS)

    def _wake_all(self) -> None:
        for waiting in self._changed.values():
            for changed in waiting:
                changed.set()

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None


def event_signals(database_url: str, counted: tuple[str, ...] = ()) -> EventSignals:
    """Signals for this database: notifications on PostgreSQL, polling alone elsewhere."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresSignals(database_url, counted)
    return PollOnly()
