"""The worker's side of the job row: claims are one compare-and-set, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from models.access import SERVICE
from models.jobs import lifecycle, records
from models.tables import utcnow

SPEC = {"fit": {"epochs": 3}}


def test_only_one_of_two_deliveries_claims_a_job(session: Session) -> None:
    job = records.create(session, SPEC, "twice")
    session.commit()
    assert lifecycle.claim(session, job.id, "worker-a", 3, 60) == "claimed"
    assert lifecycle.claim(session, job.id, "worker-b", 3, 60) == "skipped"
    session.commit()
    session.refresh(job)
    assert (job.status, job.attempts, job.worker) == ("running", 1, "worker-a")


def test_claim_respects_the_attempt_cap(session: Session) -> None:
    job = records.create(session, SPEC, None)
    job.attempts = 3
    session.commit()
    assert lifecycle.claim(session, job.id, "worker", 3, 60) == "skipped"


def test_epochs_append_to_history_and_finish_records_the_outcome(session: Session) -> None:
    job = records.create(session, SPEC, None)
    lifecycle.claim(session, job.id, "worker", 3, 60)
    lifecycle.record_epoch(session, job.id, 0, 3, {"loss": 0.5, "accuracy": float("nan")})
    lifecycle.record_epoch(session, job.id, 1, 3, {"loss": 0.25, "accuracy": 0.75})
    lifecycle.finish(session, job.id, "succeeded", evaluation={"loss": 0.3}, artifacts=["weights"])
    session.commit()
    session.refresh(job)
    assert job.history == {"loss": [0.5, 0.25], "accuracy": [None, 0.75]}
    assert job.progress == {"epoch": 2, "epochs": 3}
    assert (job.status, job.evaluation, job.artifacts) == ("succeeded", {"loss": 0.3}, ["weights"])
    # A late finish from a duplicate delivery cannot overwrite the final state.
    lifecycle.finish(session, job.id, "failed", error={"message": "late"})
    session.commit()
    session.refresh(job)
    assert job.status == "succeeded" and job.error is None


def _running(session: Session, worker: str, attempts: int = 1, silent_for: float = 0) -> str:
    job = records.create(session, SPEC, None)
    session.commit()
    assert lifecycle.claim(session, job.id, worker, 3, 60) == "claimed"
    job.attempts = attempts
    job.heartbeat_at = utcnow() - timedelta(seconds=silent_for)
    session.commit()
    return job.id


def test_a_live_workers_job_is_not_taken_over(session: Session) -> None:
    job_id = _running(session, "host-a:1")
    assert lifecycle.claim(session, job_id, "host-b:2", 3, 60) == "skipped"


def test_a_silent_workers_job_is_resumed_by_the_next_delivery(session: Session) -> None:
    job_id = _running(session, "host-a:1", silent_for=120)
    assert lifecycle.claim(session, job_id, "host-b:2", 3, 60) == "resumed"
    job = records.get(session, job_id, SERVICE)
    session.refresh(job)
    assert (job.worker, job.attempts, job.status) == ("host-b:2", 2, "running")


def test_a_dead_process_is_taken_over_at_once(session: Session) -> None:
    job_id = _running(session, "host-a:1")
    dead = {"host-a:1"}
    assert lifecycle.claim(session, job_id, "host-a:2", 3, 60, dead.__contains__) == "resumed"


def test_out_of_attempts_ends_failed_with_the_reason(session: Session) -> None:
    job_id = _running(session, "host-a:1", attempts=3, silent_for=120)
    assert lifecycle.claim(session, job_id, "host-b:2", 3, 60) == "exhausted"
    job = records.get(session, job_id, SERVICE)
    session.refresh(job)
    assert job.status == "failed"
    assert job.error is not None and job.error["code"] == "worker_lost"
    assert "possibly out of memory" in job.error["message"]


def test_heartbeat_belongs_to_the_owner_only(session: Session) -> None:
    job_id = _running(session, "host-a:1")
    assert lifecycle.heartbeat(session, job_id, "host-a:1", {"epoch": 1}) is False
    assert lifecycle.heartbeat(session, job_id, "host-z:9", None) is None
    records.request_cancel(session, job_id, SERVICE)
    assert lifecycle.heartbeat(session, job_id, "host-a:1", None) is True


def test_resume_point_cuts_history_back_to_the_checkpoint(session: Session) -> None:
    job_id = _running(session, "host-a:1")
    for epoch in range(3):
        lifecycle.record_epoch(session, job_id, epoch, 5, {"loss": float(epoch)})
    lifecycle.checkpointed(session, job_id, 2)  # the worker died before checkpointing epoch 3
    session.commit()
    assert lifecycle.resume_point(session, job_id) == 2
    session.commit()
    assert records.get(session, job_id, SERVICE).history == {"loss": [0.0, 1.0]}
