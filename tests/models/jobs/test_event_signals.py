"""On PostgreSQL, a committed job event (or the job's deletion) wakes the streams of that job,
and only those; the listener survives its connection being killed, and while it listens,
streams hardly poll. On SQLite streams poll."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy.orm import Session

from models.access import SERVICE
from models.jobs import records
from models.jobs.event_signals import LIVE_POLL_SECONDS, PollOnly, PostgresSignals, event_signals
from tests.models.conftest import database_url

WAIT = 10  # seconds before a wake-up that should come counts as missing (they take ms)


def _job(session: Session) -> str:
    job = records.create(session, {"fit": {"epochs": 3}}, "signals")
    session.commit()
    return job.id


async def _add_event(session: Session, job_id: str) -> None:
    def write() -> None:
        records.add_event(session, job_id, "progress", {"epoch": 1})
        session.commit()

    await asyncio.to_thread(write)


def test_each_database_gets_its_signals(session: Session) -> None:
    expected = PostgresSignals if "postgresql" in database_url(session) else PollOnly
    assert isinstance(event_signals(database_url(session)), expected)


def test_a_committed_event_wakes_its_job_s_streams_only(pg_session: Session) -> None:
    ours, other = _job(pg_session), _job(pg_session)
    signals = PostgresSignals(database_url(pg_session))

    async def check() -> None:
        async with (
            signals.changes(ours) as first,
            signals.changes(ours) as second,
            signals.changes(other) as elsewhere,
        ):
            await asyncio.wait_for(signals.connected.wait(), WAIT)
            for changed in (first, second, elsewhere):
                changed.clear()
            await _add_event(pg_session, ours)
            await asyncio.wait_for(first.wait(), WAIT)
            await asyncio.wait_for(second.wait(), WAIT)
            assert not elsewhere.is_set()
        assert signals._changed == {}  # every stream that ended is forgotten
        await signals.close()

    asyncio.run(check())


def test_the_listener_comes_back_after_its_connection_is_killed(pg_session: Session) -> None:
    job_id = _job(pg_session)
    signals = PostgresSignals(database_url(pg_session))
    admin_url = signals.conninfo

    async def check() -> None:
        async with signals.changes(job_id) as changed:
            await asyncio.wait_for(signals.connected.wait(), WAIT)
            with psycopg.connect(admin_url, autocommit=True) as admin:  # as a restart would
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            while signals.connected.is_set():
                await asyncio.sleep(0.01)
            await asyncio.wait_for(signals.connected.wait(), WAIT)
            changed.clear()
            await _add_event(pg_session, job_id)
            await asyncio.wait_for(changed.wait(), WAIT)
        await signals.close()

    asyncio.run(check())


def test_streams_poll_slowly_only_while_the_listener_is_up(pg_session: Session) -> None:
    job_id = _job(pg_session)
    signals = PostgresSignals(database_url(pg_session))
    assert PollOnly().poll_seconds(0.2) == 0.2

    async def check() -> None:
        assert signals.poll_seconds(0.2) == 0.2  # not listening yet: a notification could be lost
        async with signals.changes(job_id):
            await asyncio.wait_for(signals.connected.wait(), WAIT)
            assert signals.poll_seconds(0.2) == LIVE_POLL_SECONDS
        await signals.close()

    asyncio.run(check())


def test_deleting_a_job_wakes_its_streams(pg_session: Session) -> None:
    job_id = _job(pg_session)
    signals = PostgresSignals(database_url(pg_session))

    def delete() -> None:
        records.delete(pg_session, job_id, SERVICE)
        pg_session.commit()

    async def check() -> None:
        async with signals.changes(job_id) as changed:
            await asyncio.wait_for(signals.connected.wait(), WAIT)
            changed.clear()
            await asyncio.to_thread(delete)
            await asyncio.wait_for(changed.wait(), WAIT)
        await signals.close()

    asyncio.run(check())
