"""The API's side of the job row: create, list, cancel and delete, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from models.access import SERVICE
from models.errors import Conflict, JobNotFound
from models.jobs import lifecycle, records

SPEC = {"fit": {"epochs": 3}}


def test_cancel_queued_job_is_final_and_cancel_finished_is_a_conflict(session: Session) -> None:
    job = records.create(session, SPEC, None)
    assert records.request_cancel(session, job.id, SERVICE).status == "cancelled"
    session.commit()
    assert (
        lifecycle.claim(session, job.id, "worker", 3, 60) == "skipped"
    )  # a queued-then-cancelled job never starts
    with pytest.raises(Conflict, match="already finished"):
        records.request_cancel(session, job.id, SERVICE)


def test_cancel_running_job_sets_the_flag_the_worker_polls(session: Session) -> None:
    job = records.create(session, SPEC, None)
    lifecycle.claim(session, job.id, "worker", 3, 60)
    session.commit()
    assert not lifecycle.cancel_requested(session, job.id)
    records.request_cancel(session, job.id, SERVICE)
    session.commit()
    assert lifecycle.cancel_requested(session, job.id)
    assert records.get(session, job.id, SERVICE).status == "running"


def test_deleted_job_reads_as_cancelled_to_its_worker(session: Session) -> None:
    job = records.create(session, SPEC, None)
    session.commit()
    records.delete(session, job.id, SERVICE)
    session.commit()
    assert lifecycle.cancel_requested(session, job.id)
    with pytest.raises(JobNotFound):
        records.get(session, job.id, SERVICE)


def test_listing_filters_and_pages(session: Session) -> None:
    created = [records.create(session, SPEC, f"job-{i}") for i in range(5)]
    lifecycle.claim(session, created[0].id, "worker", 3, 60)
    session.commit()
    running, total = records.listing(session, "running", 10, 0, SERVICE)
    assert [j.id for j in running] == [created[0].id] and total == 1
    page, total = records.listing(session, None, 2, 2, SERVICE)
    assert total == 5 and len(page) == 2


def test_a_dataset_over_two_gib_is_catalogued(session: Session) -> None:
    # PostgreSQL's integer stops at 2**31 - 1; an upload's size does not.
    from models.tables import Dataset

    session.add(Dataset(filename="big.npz", format="npz", size_bytes=3 * 2**30, arrays=[]))
    session.commit()
