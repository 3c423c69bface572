"""The status read of ``GET /v1/jobs/{id}``: on SQLite in a thread, on PostgreSQL batched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
import pytest
from sqlalchemy.orm import Session

from models.access import SERVICE, Principal
from models.db import postgres_conninfo
from models.errors import JobNotFound, ServiceUnavailable
from models.jobs import lifecycle, records
from models.jobs.reads import JobReader, JobRow, PostgresReader, ThreadedReader, job_reader
from tests.models.conftest import database_url


class Renders:
    """A render function that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, row: JobRow) -> bytes:
        self.calls += 1
        return json.dumps({"id": row.id, "status": row.status}).encode()


def _with_reader(
    session: Session, test: Callable[[JobReader, Renders], Coroutine[Any, Any, None]]
) -> Renders:
    renders = Renders()

    async def run() -> None:
        reader = job_reader(database_url(session), renders)
        try:
            await test(reader, renders)
        finally:
            await reader.close()

    asyncio.run(run())
    return renders


def _job(session: Session, name: str = "j") -> str:
    job = records.create(session, {"fit": {"epochs": 3}}, name)
    session.commit()
    return job.id


def test_the_reader_fits_the_database(session: Session) -> None:
    reader = job_reader(database_url(session), Renders())
    expected = PostgresReader if session.get_bind().dialect.name == "postgresql" else ThreadedReader
    assert isinstance(reader, expected)


def test_a_job_is_read_and_rendered(session: Session) -> None:
    job_id = _job(session, "first")

    async def check(reader: JobReader, _: Renders) -> None:
        assert json.loads(await reader.read(job_id, SERVICE)) == {"id": job_id, "status": "queued"}

    _with_reader(session, check)


def test_a_missing_job_is_not_found(session: Session) -> None:
    async def check(reader: JobReader, _: Renders) -> None:
        with pytest.raises(JobNotFound, match="No job with id 'nope'"):
            await reader.read("nope", SERVICE)

    _with_reader(session, check)


def test_another_users_job_reads_as_a_missing_one(session: Session) -> None:
    job = records.create(session, {"fit": {"epochs": 3}}, "ana's", owner="ana")
    session.commit()
    bob = Principal("bob", "bob", admin=False)

    async def check(reader: JobReader, _: Renders) -> None:
        ana = Principal("ana", "ana", admin=False)
        assert json.loads(await reader.read(job.id, ana))["id"] == job.id
        answers = await asyncio.gather(
            reader.read(job.id, bob), reader.read(job.id, ana), return_exceptions=True
        )
        assert isinstance(answers[0], JobNotFound)
        assert answers[0].detail() == records.not_found(job.id).detail()
        assert json.loads(answers[1])["id"] == job.id  # type: ignore[arg-type]

    _with_reader(session, check)


def test_a_read_sees_the_write_before_it(session: Session) -> None:
    job_id = _job(session)

    async def check(reader: JobReader, _: Renders) -> None:
        assert json.loads(await reader.read(job_id, SERVICE))["status"] == "queued"
        records.request_cancel(session, job_id, SERVICE)
        session.commit()
        assert json.loads(await reader.read(job_id, SERVICE))["status"] == "cancelled"

    _with_reader(session, check)


def test_concurrent_reads_each_get_their_own_job(session: Session) -> None:
    ids = [_job(session, f"job-{index}") for index in range(5)]
    asked = [*ids, "missing", *ids, ids[0], "missing"] * 4

    async def check(reader: JobReader, _: Renders) -> None:
        answers = await asyncio.gather(
            *(reader.read(i, SERVICE) for i in asked), return_exceptions=True
        )
        for job_id, answer in zip(asked, answers, strict=True):
            if job_id == "missing":
                assert isinstance(answer, JobNotFound)
            else:
                assert isinstance(answer, bytes), answer
                assert json.loads(answer)["id"] == job_id

    _with_reader(session, check)


def test_polls_of_one_job_share_a_read_and_a_render(pg_session: Session) -> None:
    job_id = _job(pg_session)

    async def check(reader: JobReader, _: Renders) -> None:
        answers = await asyncio.gather(*(reader.read(job_id, SERVICE) for _ in range(50)))
        assert len(set(answers)) == 1

    renders = _with_reader(pg_session, check)
    # The first poll starts a read alone; the 49 that arrive while it runs share the next.
    assert renders.calls <= 2


def test_a_connection_killed_by_the_database_is_replaced_unnoticed(pg_session: Session) -> None:
    job_id = _job(pg_session)
    url = postgres_conninfo(database_url(pg_session))

    async def check(reader: JobReader, _: Renders) -> None:
        await reader.read(job_id, SERVICE)
        with psycopg.connect(url, autocommit=True) as admin:  # as a database restart would
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert json.loads(await reader.read(job_id, SERVICE))["id"] == job_id

    _with_reader(pg_session, check)


def test_an_unreachable_database_is_a_503_and_the_reader_recovers(pg_session: Session) -> None:
    job_id = _job(pg_session)
    reader = PostgresReader(database_url(pg_session), Renders(), timeout_s=5)
    reachable = reader.conninfo
    reader.conninfo = "postgresql://postgres@127.0.0.1:1/nowhere"

    async def check() -> None:
        try:
            with pytest.raises(ServiceUnavailable, match="unreachable or busy"):
                await reader.read(job_id, SERVICE)
            reader.conninfo = reachable
            assert json.loads(await reader.read(job_id, SERVICE))["id"] == job_id
        finally:
            await reader.close()

    asyncio.run(check())


def test_a_render_that_fails_fails_its_requests_not_the_reader(pg_session: Session) -> None:
    good, bad = _job(pg_session, "good"), _job(pg_session, "bad")

    def render(row: JobRow) -> bytes:
        if row.name == "bad":
            raise ValueError("cannot render")
        return row.id.encode()

    async def check() -> None:
        reader = PostgresReader(database_url(pg_session), render)
        try:
            answers = await asyncio.gather(
                reader.read(good, SERVICE), reader.read(bad, SERVICE), return_exceptions=True
            )
            assert answers[0] == good.encode()
            assert isinstance(answers[1], ValueError)
            assert await reader.read(good, SERVICE) == good.encode()
        finally:
            await reader.close()

    asyncio.run(check())


def test_an_unchanged_job_is_not_rendered_again(pg_session: Session) -> None:
    job_id = _job(pg_session)
    seen: list[JobRow] = []

    def render(row: JobRow) -> bytes:
        seen.append(row)
        return json.dumps({"status": row.status, "history": row.history}).encode()

    async def check() -> None:
        reader = PostgresReader(database_url(pg_session), render)
        try:
            first = await reader.read(job_id, SERVICE)
            assert await reader.read(job_id, SERVICE) is first  # the same row: the same bytes
            lifecycle.record_epoch(pg_session, job_id, 0, 3, {"loss": 0.5})
            pg_session.commit()
            assert json.loads(await reader.read(job_id, SERVICE)) == {
                "status": "queued",
                "history": {"loss": [0.5]},
            }
        finally:
            await reader.close()

    asyncio.run(check())
    assert len(seen) == 2
    # JSON columns reach the renderer decoded, as the ORM would give them.
    assert seen[1].history == {"loss": [0.5]} and seen[1].progress["epoch"] == 1


def test_kept_renderings_stay_within_their_budget(pg_session: Session) -> None:
    ids = [_job(pg_session, f"job-{index}") for index in range(6)]
    renders = Renders()

    async def check() -> None:
        reader = PostgresReader(database_url(pg_session), renders, keep_bytes=500)
        try:
            for job_id in ids:
                await reader.read(job_id, SERVICE)
            assert 0 < reader._rendered_bytes <= 500
            assert list(reader._rendered) == ids[-len(reader._rendered) :]  # the oldest left
            assert len(reader._rendered) < len(ids)
            await reader.read(ids[0], SERVICE)  # dropped, so rendered again
        finally:
            await reader.close()

    asyncio.run(check())
    assert renders.calls == len(ids) + 1
