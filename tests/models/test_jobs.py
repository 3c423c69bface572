"""The job row is the truth: claims are one compare-and-set, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models import jobs
from models.db import get_sessionmaker
from models.errors import Conflict, JobNotFound
from tests.services import drop_postgres_database, postgres_database

SPEC = {"fit": {"epochs": 3}}


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        name = None
    else:
        name = f"remotefit_test_{uuid.uuid4().hex[:12]}"
        url = postgres_database(name)
    maker = get_sessionmaker(url)
    with maker() as db:
        yield db
    maker.kw["bind"].dispose()
    if name:
        drop_postgres_database(name)


def test_only_one_of_two_deliveries_claims_a_job(session: Session) -> None:
    job = jobs.create(session, SPEC, "twice")
    session.commit()
    assert jobs.claim(session, job.id, "worker-a", max_attempts=3)
    assert not jobs.claim(session, job.id, "worker-b", max_attempts=3)
    session.commit()
    session.refresh(job)
    assert (job.status, job.attempts, job.worker) == ("running", 1, "worker-a")


def test_claim_respects_the_attempt_cap(session: Session) -> None:
    job = jobs.create(session, SPEC, None)
    job.attempts = 3
    session.commit()
    assert not jobs.claim(session, job.id, "worker", max_attempts=3)


def test_epochs_append_to_history_and_finish_records_the_outcome(session: Session) -> None:
    job = jobs.create(session, SPEC, None)
    jobs.claim(session, job.id, "worker", 3)
    jobs.record_epoch(session, job.id, 0, 3, {"loss": 0.5, "accuracy": float("nan")})
    jobs.record_epoch(session, job.id, 1, 3, {"loss": 0.25, "accuracy": 0.75})
    jobs.finish(session, job.id, "succeeded", evaluation={"loss": 0.3}, artifacts=["weights"])
    session.commit()
    session.refresh(job)
    assert job.history == {"loss": [0.5, 0.25], "accuracy": [None, 0.75]}
    assert job.progress == {"epoch": 2, "epochs": 3}
    assert (job.status, job.evaluation, job.artifacts) == ("succeeded", {"loss": 0.3}, ["weights"])
    # A late finish from a duplicate delivery cannot overwrite the final state.
    jobs.finish(session, job.id, "failed", error={"message": "late"})
    session.commit()
    session.refresh(job)
    assert job.status == "succeeded" and job.error is None


def test_cancel_queued_job_is_final_and_cancel_finished_is_a_conflict(session: Session) -> None:
    job = jobs.create(session, SPEC, None)
    assert jobs.request_cancel(session, job.id).status == "cancelled"
    session.commit()
    assert not jobs.claim(session, job.id, "worker", 3)  # a queued-then-cancelled job never starts
    with pytest.raises(Conflict, match="already finished"):
        jobs.request_cancel(session, job.id)


def test_cancel_running_job_sets_the_flag_the_worker_polls(session: Session) -> None:
    job = jobs.create(session, SPEC, None)
    jobs.claim(session, job.id, "worker", 3)
    session.commit()
    assert not jobs.cancel_requested(session, job.id)
    jobs.request_cancel(session, job.id)
    session.commit()
    assert jobs.cancel_requested(session, job.id)
    assert jobs.get(session, job.id).status == "running"


def test_deleted_job_reads_as_cancelled_to_its_worker(session: Session) -> None:
    job = jobs.create(session, SPEC, None)
    session.commit()
    jobs.delete(session, job.id)
    session.commit()
    assert jobs.cancel_requested(session, job.id)
    with pytest.raises(JobNotFound):
        jobs.get(session, job.id)


def test_listing_filters_and_pages(session: Session) -> None:
    created = [jobs.create(session, SPEC, f"job-{i}") for i in range(5)]
    jobs.claim(session, created[0].id, "worker", 3)
    session.commit()
    running, total = jobs.listing(session, "running", limit=10, offset=0)
    assert [j.id for j in running] == [created[0].id] and total == 1
    page, total = jobs.listing(session, None, limit=2, offset=2)
    assert total == 5 and len(page) == 2
