"""Races between a cancel, a lost worker, a delete and the job's new owner (SQLite, PostgreSQL).

A cancelled job whose worker then dies ends cancelled instead of training again; a worker that
lost its claim learns so before each file it would write, and its finish records nothing; a
dataset or job that a queued job starts from cannot be deleted; no message shows a server path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models.access import SERVICE
from models.data import catalog
from models.data.store import LocalStore
from models.errors import Conflict, without_paths
from models.jobs import lifecycle, records
from models.settings import Settings
from models.tables import Dataset, Job, new_id
from tests.models.jobs.test_sweeper import LEASE, Broker, queued, run, running, state


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, lease_seconds=LEASE, max_attempts=3)


def _cancel(session: Session, job_id: str) -> None:
    records.request_cancel(session, job_id, SERVICE)
    session.commit()


@pytest.mark.parametrize("attempts", [1, 3])
def test_cancel_then_worker_death_ends_cancelled_not_requeued(
    session: Session, settings: Settings, attempts: int
) -> None:
    job_id = running(session, silent_for=LEASE + 5, attempts=attempts)
    _cancel(session, job_id)
    broker = Broker(backlog=0)
    report = run(session, settings, broker)
    assert report.cancelled == [job_id]
    assert report.requeued == report.failed == broker.sent == []
    assert state(session, job_id).status == "cancelled"
    assert run(session, settings, broker).cancelled == []  # once


def test_a_redelivery_after_cancel_and_death_does_not_resume(session: Session) -> None:
    for dead_how in ("silent", "dead process"):
        job_id = running(session, silent_for=LEASE + 5 if dead_how == "silent" else 0)
        _cancel(session, job_id)
        claim = lifecycle.claim(session, job_id, "host-b:2", 3, LEASE, lambda _: True)
        session.commit()
        assert claim == "skipped", dead_how
        job = state(session, job_id)
        assert (job.status, job.worker, job.attempts) == ("cancelled", "host-a:1", 1), dead_how


def test_only_the_owner_holds_the_claim_and_can_finish(session: Session) -> None:
    job_id = running(session, silent_for=LEASE + 5)
    assert lifecycle.holds(session, job_id, "host-a:1")
    assert lifecycle.claim(session, job_id, "host-b:2", 3, LEASE) == "resumed"
    session.commit()
    assert not lifecycle.holds(session, job_id, "host-a:1")
    assert lifecycle.holds(session, job_id, "host-b:2")
    assert not lifecycle.finish(session, job_id, "succeeded", worker="host-a:1")
    assert lifecycle.finish(session, job_id, "succeeded", worker="host-b:2")
    session.commit()
    assert not lifecycle.holds(session, job_id, "host-b:2")  # finished: nobody writes now
    assert not lifecycle.holds(session, new_id(), "host-b:2")  # deleted


def _queued_with(session: Session, initial_weights: dict[str, str]) -> str:
    job = records.create(session, {"fit": {"epochs": 1}, "initial_weights": initial_weights}, None)
    session.commit()
    return job.id


def test_a_job_that_queued_jobs_start_from_cannot_be_deleted(session: Session) -> None:
    source = queued(session)
    user = _queued_with(session, {"job": source})
    with pytest.raises(Conflict, match=user):
        records.delete(session, source, SERVICE)
    session.rollback()
    _cancel(session, user)
    records.delete(session, source, SERVICE)  # once nothing unfinished starts from it
    session.commit()
    assert session.get(Job, source) is None


def test_a_dataset_that_queued_jobs_start_from_cannot_be_deleted(
    session: Session, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    dataset = Dataset(id=new_id(), filename="w.h5", format="h5", size_bytes=1, arrays=[])
    session.add(dataset)
    session.commit()
    user = _queued_with(session, {"dataset": dataset.id})
    with pytest.raises(Conflict, match=user):
        catalog.delete(session, store, dataset.id, SERVICE)
    session.rollback()
    _cancel(session, user)
    catalog.delete(session, store, dataset.id, SERVICE)
    assert session.get(Dataset, dataset.id) is None


@pytest.mark.parametrize(
    "message",
    [
        "Unable to open file (name = '/var/lib/remotefit/store/jobs/abc/weights.weights.h5')",
        "No such file: /tmp/remotefit-weights-x1/initial.weights.h5.",
        "[Errno 2] No such file or directory: '/srv/store/datasets/0a/data.npz'",
    ],
)
def test_no_message_shows_a_server_path(message: str) -> None:
    cleaned = without_paths(message)
    assert "/" not in cleaned.replace("<server path>", ""), cleaned
    assert without_paths("shape 1/2, ratio a/b, units=3") == "shape 1/2, ratio a/b, units=3"
