"""Event streams stay bounded: one progress row per job, replay in pages, a cap on open streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.routes import events
from models.db import get_engine, session_scope
from models.jobs import lifecycle, records
from models.settings import Settings
from models.tables import JobEvent
from tests.api.test_hostile_requests import tiny_job
from tests.services import Service, embedded


def _progress_rows(url: str, job_id: str) -> list[dict[str, Any]]:
    with session_scope(url) as session:
        return [
            e.data
            for e in session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "progress")
            )
        ]


def test_a_running_job_keeps_one_progress_event(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    url = settings.database_url
    get_engine(url)
    with session_scope(url) as session:
        job_id = records.create(session, {"fit": {"epochs": 3}}, None).id
        session.commit()
        assert lifecycle.claim(session, job_id, "worker", 3, 60) == "claimed"
        session.commit()
        ids = []
        for step in range(30):  # fifteen seconds of a job's life
            lifecycle.heartbeat(session, job_id, "worker", {"step": step})
            session.commit()
            ids.append(session.scalar(select(func.max(JobEvent.id))))
    assert _progress_rows(url, job_id) == [{"step": 29}]
    # Never an id a reader has seen already (SQLite reuses a deleted highest id).
    assert ids == sorted(set(ids))


def test_replay_comes_in_pages(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    url = settings.database_url
    get_engine(url)
    total = 2 * events.EVENTS_PAGE + 7
    with session_scope(url) as session:
        job_id = records.create(session, {"fit": {"epochs": 3}}, None).id
        for epoch in range(total - 1):  # create() added the first, "queued"
            records.add_event(session, job_id, "epoch", {"epoch": epoch})
        session.commit()
        assert session.scalar(select(func.count()).select_from(JobEvent)) == total
    seen: list[int] = []
    after = 0
    while True:
        status, rows = events._read(settings, job_id, after)
        assert status == "queued" and len(rows) <= events.EVENTS_PAGE
        if not rows:
            break
        seen += [row.id for row in rows]
        after = rows[-1].id
    assert len(seen) == total and seen == sorted(seen)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = embedded(tmp_path_factory.mktemp("capped"), REMOTEFIT_MAX_EVENT_STREAMS="2")
    service.start()
    yield service
    service.stop()


def test_open_streams_are_capped(capped: Service) -> None:
    with capped.client() as client:
        job = client.post("/v1/jobs", json=tiny_job(fit={"epochs": 100_000})).json()["id"]
        url = f"/v1/jobs/{job}/events"
        try:
            with client.stream("GET", url) as first, client.stream("GET", url) as second:
                # Kept referenced: an iterator dropped by httpx closes its response.
                readers = [stream.iter_text() for stream in (first, second)]
                for stream, reader in zip((first, second), readers, strict=True):
                    assert stream.status_code == 200
                    next(reader)  # its generator runs: the stream is counted
                refused = httpx.get(capped.url + url, timeout=5)
                assert refused.status_code == 429, refused.text
                detail = refused.json()["detail"]
                assert detail["code"] == "too_many_requests"
                assert "REMOTEFIT_MAX_EVENT_STREAMS=2" in detail["message"]
            deadline = time.monotonic() + 10  # the server notices the closed streams
            while time.monotonic() < deadline:
                with client.stream("GET", url) as again:
                    if again.status_code == 200:
                        break
                time.sleep(0.3)
            else:
                pytest.fail("closed streams were never released")
        finally:
            client.post(f"/v1/jobs/{job}/cancel")


def test_streams_opened_at_once_never_pass_the_cap(capped: Service) -> None:
    """Eight streams asked for at the same moment: two open, six get a 429, none more."""
    with capped.client() as client:
        job = client.post("/v1/jobs", json=tiny_job(fit={"epochs": 100_000})).json()["id"]
    url = f"{capped.url}/v1/jobs/{job}/events"
    opened = threading.Barrier(8, timeout=30)
    held = threading.Event()
    statuses: list[int] = []

    def open_one() -> None:
        with httpx.Client(timeout=30) as client:
            opened.wait()  # every request leaves together
            with client.stream("GET", url) as stream:
                statuses.append(stream.status_code)
                if stream.status_code == 200:
                    held.wait(30)  # kept open until every answer is in

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(statuses) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(statuses) == [200, 200] + [429] * 6, statuses
    finally:
        held.set()
        for thread in threads:
            thread.join(timeout=30)
        httpx.post(f"{capped.url}/v1/jobs/{job}/cancel", timeout=30)


def test_a_refused_or_missing_stream_holds_no_place(capped: Service) -> None:
    """Streams of jobs that do not exist are 404s, which leave the cap's places free."""
    with capped.client() as client:
        for _ in range(5):
            assert client.get(f"/v1/jobs/{'0' * 32}/events").status_code == 404
        job = client.post("/v1/jobs", json=tiny_job(fit={"epochs": 100_000})).json()["id"]
        url = f"/v1/jobs/{job}/events"
        deadline = time.monotonic() + 10  # streams of the test before may still be closing
        try:
            while True:
                with client.stream("GET", url) as first, client.stream("GET", url) as second:
                    if first.status_code == second.status_code == 200:
                        break
                assert time.monotonic() < deadline, "the cap's places were not given back"
                time.sleep(0.3)
        finally:
            client.post(f"/v1/jobs/{job}/cancel")
