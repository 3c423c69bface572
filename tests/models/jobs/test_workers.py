"""The workers' registry over a real database: who is alive, on what, doing what."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from models.jobs import lifecycle, records
from models.jobs.workers import live, report_devices, report_slots, summary
from models.settings import Settings
from models.tables import utcnow

CPU = [{"kind": "CPU", "name": "x86_64", "cores": 2}]
SETTINGS = Settings(lease_seconds=30)


def _on(worker: str, name: str) -> dict[str, object]:
    return {"worker": worker, "name": name, "devices": CPU}


def test_idle_and_busy_workers_with_their_jobs_devices_and_jobs_done(session: Session) -> None:
    now = utcnow()
    # The pool process may report its devices before its parent's first heartbeat, or after.
    report_devices(session, "h:1", CPU)
    report_slots(session, "h:1", 1, now, "remotefit@h", "h")
    report_slots(session, "h:2", 1, now, "remotefit-gpu0@h", "h")
    report_devices(session, "h:2", CPU)
    session.commit()
    done = records.create(session, {"fit": {"epochs": 1}}, None, None)
    running = records.create(session, {"fit": {"epochs": 1}}, None, None)
    session.commit()
    for job in (done, running):
        claimed = lifecycle.claim(session, job.id, "h:11", 3, 30, ran_on=_on("h:1", "remotefit@h"))
        assert claimed == "claimed"
    lifecycle.finish(session, done.id, "succeeded")
    session.commit()

    found = {w["id"]: w for w in live(session, SETTINGS, utcnow())}
    assert set(found) == {"h:1", "h:2"}
    busy, idle = found["h:1"], found["h:2"]
    assert (busy["state"], busy["job"], busy["jobs_done"]) == ("busy", running.id, 1)
    assert (idle["state"], idle["job"], idle["jobs_done"]) == ("idle", None, 0)
    assert busy["name"] == "remotefit@h" and busy["host"] == "h" and busy["devices"] == CPU
    assert busy["summary"] == "CPU x86_64 (2 cores)" and busy["slots"] == 1
    assert busy["last_heartbeat"].tzinfo is not None
    session.refresh(running)
    assert running.node == "h:1" and running.ran_on == _on("h:1", "remotefit@h")


def test_a_worker_that_stopped_heartbeating_or_stopped_drops_out(session: Session) -> None:
    now = utcnow()
    report_slots(session, "silent:1", 1, now - timedelta(seconds=SETTINGS.lease_seconds + 1))
    report_slots(session, "stopped:2", 0, now)  # its shutdown reports no slot
    report_slots(session, "here:3", 1, now)
    report_devices(session, "starting:4", CPU)  # a pool process whose parent has not beaten
    session.commit()
    assert [w["id"] for w in live(session, SETTINGS, now)] == ["here:3"]


def test_a_takeover_records_the_new_worker(session: Session) -> None:
    job = records.create(session, {"fit": {"epochs": 1}}, None, None)
    session.commit()
    lifecycle.claim(session, job.id, "a:11", 3, 30, ran_on=_on("a:1", "remotefit@a"))
    session.commit()
    taken = lifecycle.claim(session, job.id, "b:22", 3, 30, lambda _: True, ran_on=_on("b:2", "b"))
    assert taken == "resumed"
    session.commit()
    session.refresh(job)
    assert job.node == "b:2" and job.ran_on == _on("b:2", "b")


def test_devices_in_a_few_words() -> None:
    gpu = {"kind": "GPU", "name": "NVIDIA H200", "memory_bytes": 141 * 2**30}
    assert summary([gpu, gpu]) == "2x NVIDIA H200 (141 GiB)"
    assert summary([{"kind": "GPU", "name": "T4"}]) == "T4"
    assert summary(CPU) == "CPU x86_64 (2 cores)"
    assert summary(None) == "devices not reported yet"
