"""The monitor writes the epochs training hands it: all of them, in order, once, and none for
a job another worker has taken over."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from models.jobs import lifecycle
from models.jobs.monitor import JobMonitor
from models.settings import Settings
from models.tables import JobEvent, utcnow
from tests.models.conftest import database_url
from tests.models.jobs.test_sweeper import LEASE, running, state


def monitor_of(session: Session, tmp_path: Path, job_id: str, period: float) -> JobMonitor:
    url = database_url(session)
    settings = Settings(data_dir=tmp_path, database_url=url, heartbeat_seconds=period)
    return JobMonitor(settings, job_id, "host-a:1", time_limit=600, initial_epoch=0)


def epoch_events(session: Session, job_id: str) -> list[int]:
    found = session.query(JobEvent).filter_by(job_id=job_id, type="epoch").order_by(JobEvent.id)
    return [event.data["epoch"] for event in found]


def test_epochs_handed_over_while_it_runs_are_written_in_order(
    session: Session, tmp_path: Path
) -> None:
    job_id = running(session, silent_for=0)
    monitor = monitor_of(session, tmp_path, job_id, period=0.05)
    monitor.start()
    for epoch in range(30):
        monitor.record_epoch(epoch, 30, {"loss": 1.0 / (epoch + 1)})
        monitor.update(epoch=epoch + 1, epochs=30)
        time.sleep(0.003)
    deadline = time.monotonic() + 10
    while len(epoch_events(session, job_id)) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)  # written by the monitor, without anyone asking
        session.commit()
    monitor.stop()
    session.commit()
    assert epoch_events(session, job_id) == list(range(1, 31))
    assert state(session, job_id).history == {"loss": [1.0 / (n + 1) for n in range(30)]}


def test_write_epochs_from_two_threads_writes_each_once(session: Session, tmp_path: Path) -> None:
    job_id = running(session, silent_for=0)
    monitor = monitor_of(session, tmp_path, job_id, period=60)
    for epoch in range(12):
        monitor.record_epoch(epoch, 12, {"loss": float(epoch)})
    writers = [threading.Thread(target=monitor.write_epochs) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    session.commit()
    assert epoch_events(session, job_id) == list(range(1, 13))
    assert state(session, job_id).history == {"loss": [float(n) for n in range(12)]}


def test_a_job_taken_over_gets_none_of_the_queued_epochs(session: Session, tmp_path: Path) -> None:
    job_id = running(session, silent_for=0)
    monitor = monitor_of(session, tmp_path, job_id, period=60)
    monitor.record_epoch(0, 5, {"loss": 0.5})
    monitor.write_epochs()
    state(session, job_id).heartbeat_at = utcnow() - timedelta(seconds=LEASE + 5)
    session.commit()
    assert lifecycle.claim(session, job_id, "host-b:2", 3, LEASE) == "resumed"
    session.commit()
    monitor.record_epoch(1, 5, {"loss": 9.0})
    monitor.record_epoch(2, 5, {"loss": 9.0})
    monitor.write_epochs()
    assert monitor.stop_reason == "lost"
    session.commit()
    assert state(session, job_id).history == {"loss": [0.5]}
    assert epoch_events(session, job_id) == [1]
