"""The sweeper keeps every job moving, on a real database (SQLite and PostgreSQL).

Also the job-row steps a take-over relies on: the resume point and owner-only epoch records.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.data.store import LocalStore
from models.jobs import lifecycle, records
from models.jobs.sweeper import SweepReport, remove_stale_temp_files, sweep
from models.settings import Settings
from models.tables import Job, JobEvent, utcnow

SPEC = {"fit": {"epochs": 5}}
LEASE = 30


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, lease_seconds=LEASE, max_attempts=3)


class Broker:
    """Records what the sweeper sends; ``backlog`` is what it claims to hold."""

    def __init__(self, backlog: int | None) -> None:
        self.backlog = backlog
        self.sent: list[str] = []

    def send(self, job_id: str) -> None:
        self.sent.append(job_id)

    def size(self) -> int | None:
        return self.backlog


def run(session: Session, settings: Settings, broker: Broker) -> SweepReport:
    report = sweep(session, settings, broker.send, broker.size)
    session.commit()
    return report


def queued(session: Session, age: float = 0, dispatched: bool = True) -> str:
    """A queued job; ``dispatched``: sent to the broker by the dispatcher when created."""
    job = records.create(session, SPEC, None)
    job.created_at = utcnow() - timedelta(seconds=age)
    job.dispatched_at = job.created_at if dispatched else None
    session.commit()
    return job.id


def running(session: Session, silent_for: float, attempts: int = 1) -> str:
    job_id = queued(session)
    assert lifecycle.claim(session, job_id, "host-a:1", 3, LEASE) == "claimed"
    session.commit()
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    job.attempts = attempts
    job.heartbeat_at = utcnow() - timedelta(seconds=silent_for)
    session.commit()
    return job_id


def state(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def status_events(session: Session, job_id: str) -> list[dict[str, object]]:
    found = session.query(JobEvent).filter_by(job_id=job_id, type="status").order_by(JobEvent.id)
    return [event.data for event in found]


def test_a_silent_worker_s_job_is_requeued_and_sent_once(
    session: Session, settings: Settings
) -> None:
    job_id = running(session, silent_for=LEASE + 5)
    broker = Broker(backlog=0)
    report = run(session, settings, broker)
    assert report.requeued == [job_id] and report.resent == []
    assert broker.sent == [job_id]  # not a second time as a "lost" queued message
    job = state(session, job_id)
    assert (job.status, job.attempts) == ("queued", 1)
    assert status_events(session, job_id)[-1] == {"status": "queued", "reason": "worker lost"}

    # Its message is with a worker that is starting: the next pass sends nothing more.
    assert run(session, settings, Broker(backlog=0)).resent == []


def test_a_job_out_of_attempts_ends_failed(session: Session, settings: Settings) -> None:
    job_id = running(session, silent_for=LEASE + 5, attempts=3)
    broker = Broker(backlog=0)
    report = run(session, settings, broker)
    assert report.failed == [job_id] and broker.sent == []
    job = state(session, job_id)
    assert job.status == "failed"
    assert job.error is not None and job.error["code"] == "worker_lost"
    assert run(session, settings, broker).failed == []  # once


def test_a_live_worker_s_job_is_left_alone(session: Session, settings: Settings) -> None:
    job_id = running(session, silent_for=1)
    broker = Broker(backlog=0)
    report = run(session, settings, broker)
    assert (report.requeued, report.failed, report.resent, broker.sent) == ([], [], [], [])
    assert state(session, job_id).status == "running"


def test_jobs_waiting_their_turn_have_no_message_to_resend(
    session: Session, settings: Settings
) -> None:
    queued(session, age=LEASE + 5, dispatched=False)
    assert run(session, settings, Broker(backlog=0)).resent == []


def test_lost_messages_of_queued_jobs_are_sent_again(session: Session, settings: Settings) -> None:
    old = [queued(session, age=LEASE + 5) for _ in range(2)]
    broker = Broker(backlog=0)  # a Redis restarted without persistence
    assert run(session, settings, broker).resent == old
    assert broker.sent == old
    # Sent again just now: not again on the next pass, even if a worker holds one of them.
    broker.backlog = 1
    assert run(session, settings, broker).resent == []
    assert broker.sent == old
    assert [state(session, job_id).status for job_id in old] == ["queued", "queued"]


def test_recent_messages_may_be_on_their_way(session: Session, settings: Settings) -> None:
    fresh = queued(session, age=1)
    broker = Broker(backlog=0)
    assert run(session, settings, broker).resent == []
    assert state(session, fresh).status == "queued"


@pytest.mark.parametrize("backlog", [None, 2, 5])
def test_nothing_is_resent_when_the_broker_holds_enough_or_cannot_say(
    session: Session, settings: Settings, backlog: int | None
) -> None:
    for _ in range(2):
        queued(session, age=LEASE + 5)
    broker = Broker(backlog=backlog)
    assert run(session, settings, broker).resent == []
    assert broker.sent == []


def test_finished_jobs_are_never_touched(session: Session, settings: Settings) -> None:
    job_id = running(session, silent_for=LEASE + 5)
    lifecycle.finish(session, job_id, "succeeded", worker="host-a:1")
    session.commit()
    broker = Broker(backlog=0)
    report = run(session, settings, broker)
    assert (report.requeued, report.failed, report.resent, broker.sent) == ([], [], [], [])
    assert state(session, job_id).status == "succeeded"


# --- temporaries ----------------------------------------------------------------------------------

ITEM = "0123456789abcdef0123456789abcdef"


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    stale_upload = store.temp_path()
    fresh_upload = store.temp_path()
    folder = store.folder("jobs", ITEM)
    folder.mkdir()
    stale_artifact = folder / ".tmp-abc.weights.h5"
    final = folder / "weights.weights.h5"
    for path in (stale_upload, fresh_upload, stale_artifact, final):
        path.write_bytes(b"x")
    for path in (stale_upload, stale_artifact, final):
        _age(path, 7200)

    assert remove_stale_temp_files(store, 3600) == 2
    assert not stale_upload.exists() and not stale_artifact.exists()
    assert fresh_upload.exists() and final.exists()
    assert remove_stale_temp_files(store, 0) == 1  # at start-up with no grace: all of them
    assert list((tmp_path / "tmp").iterdir()) == [] and final.exists()


def test_a_new_owner_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    folder = store.folder("jobs", ITEM)
    folder.mkdir()
    (folder / ".tmp-1.weights.h5").write_bytes(b"half")
    (folder / "checkpoint.weights.h5").write_bytes(b"whole")
    assert store.remove_temporaries("jobs", ITEM) == 1
    assert [p.name for p in folder.iterdir()] == ["checkpoint.weights.h5"]
    assert store.remove_temporaries("jobs", "f" * 32) == 0  # no folder yet


# --- what a take-over relies on -------------------------------------------------------------------


def _with_epochs(session: Session, done: int, checkpoint: int, first: int = 0) -> str:
    job_id = running(session, silent_for=0)
    for epoch in range(first, first + done):
        lifecycle.record_epoch(session, job_id, epoch, 5, {"loss": float(epoch)}, worker="host-a:1")
    lifecycle.checkpointed(session, job_id, checkpoint, worker="host-a:1")
    session.commit()
    return job_id


def test_resume_point_counts_from_the_spec_s_initial_epoch(session: Session) -> None:
    # initial_epoch=2: epochs 3, 4 and 5 recorded, the checkpoint holds 4 (epochs 3 and 4).
    job_id = _with_epochs(session, done=3, checkpoint=4, first=2)
    assert lifecycle.resume_point(session, job_id, first_epoch=2) == 4
    session.commit()
    job = state(session, job_id)
    assert job.history == {"loss": [2.0, 3.0]} and job.progress["epoch"] == 4


def test_without_a_checkpoint_file_training_starts_over(session: Session) -> None:
    job_id = _with_epochs(session, done=2, checkpoint=2)
    assert lifecycle.resume_point(session, job_id, first_epoch=0, has_checkpoint=False) == 0
    session.commit()
    job = state(session, job_id)
    assert job.history == {"loss": []} and job.checkpoint_epoch == 0


def test_a_worker_taken_over_records_nothing_more(session: Session) -> None:
    job_id = _with_epochs(session, done=2, checkpoint=2)
    job = state(session, job_id)
    job.heartbeat_at = utcnow() - timedelta(seconds=LEASE + 5)
    session.commit()
    assert lifecycle.claim(session, job_id, "host-b:2", 3, LEASE) == "resumed"
    session.commit()
    assert lifecycle.record_epoch(session, job_id, 2, 5, {"loss": 9.0}, worker="host-a:1") is None
    lifecycle.checkpointed(session, job_id, 3, worker="host-a:1")
    session.commit()
    job = state(session, job_id)
    assert job.history == {"loss": [0.0, 1.0]} and job.checkpoint_epoch == 2
    assert (
        lifecycle.record_epoch(session, job_id, 2, 5, {"loss": 2.0}, worker="host-b:2") is not None
    )


def test_a_job_recorded_under_this_very_process_is_taken_over(session: Session) -> None:
    # A restarted container: the new pool process got the pid of the one that died running it.
    job_id = running(session, silent_for=0)
    assert lifecycle.claim(session, job_id, "host-a:1", 3, LEASE) == "resumed"
    session.commit()
    assert (state(session, job_id).attempts, state(session, job_id).worker) == (2, "host-a:1")


def test_the_checkpoint_file_s_own_epoch_wins_over_the_row(session: Session) -> None:
    # Killed after the checkpoint file (epoch 3) was written but before the row learned of it.
    job_id = _with_epochs(session, done=3, checkpoint=2)
    dead = {"host-a:1"}
    assert lifecycle.claim(session, job_id, "host-b:2", 3, LEASE, dead.__contains__, 3) == "resumed"
    assert lifecycle.resume_point(session, job_id, 0, has_checkpoint=True, saved_epoch=3) == 3
    session.commit()
    assert state(session, job_id).history == {"loss": [0.0, 1.0, 2.0]}
    # The takeover's event tells the user the epoch training goes on from, not the row's.
    takeover = session.scalars(
        select(JobEvent.data).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc())
    ).first()
    assert takeover == {"status": "running", "worker": "host-b:2", "resumed_from_epoch": 3}


def test_workers_gone_for_a_day_are_forgotten(session: Session, settings: Settings) -> None:
    from models.jobs.workers import report_slots
    from models.tables import WorkerSlots

    report_slots(session, "gone:1", 1, utcnow() - timedelta(days=2))
    report_slots(session, "here:2", 1, utcnow())
    session.commit()
    run(session, settings, Broker(backlog=0))
    session.commit()
    assert [w.worker for w in session.query(WorkerSlots)] == ["here:2"]
