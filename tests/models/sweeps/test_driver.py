"""The driver, pass by pass, on SQLite and PostgreSQL: trials are created once, told once,
a failed one does not stop the sweep, and a new driver (a restarted API) carries on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.access import SERVICE
from models.settings import Settings
from models.sweeps import records
from models.sweeps.driver import Driver
from models.sweeps.spec import SweepCreate
from models.tables import Job, Sweep, Trial
from tests.models.conftest import database_url
from tests.models.sweeps.test_space import sequential


def new_sweep(session: Session, max_trials: int = 4, concurrent: int = 2) -> str:
    sweep = SweepCreate.model_validate(
        {
            "name": "drive",
            "base": {
                "model": sequential(),
                "compile": {"loss": "mse"},
                "data": {"train": {"x": [[0.0] * 4] * 2, "y": [[0.0]] * 2}},
                "fit": {"epochs": 2},
            },
            "parameters": {
                "units": {
                    "target": "/model/config/layers/@hidden/config/units",
                    "int": {"low": 2, "high": 64},
                }
            },
            "objective": {"metric": "loss"},
            "sampler": {"type": "random", "seed": 3},
            "budget": {"max_trials": max_trials, "max_concurrent_trials": concurrent},
        }
    )
    row = records.create(session, sweep, sweep.base.model_dump(mode="json"), owner=None)
    session.commit()
    return row.id


def driver(session: Session) -> Driver:
    return Driver(Settings(database_url=database_url(session)))


def trial_jobs(session: Session, sweep_id: str) -> dict[int, Job]:
    session.expire_all()
    rows = session.scalars(select(Trial).where(Trial.sweep_id == sweep_id)).all()
    return {row.number: session.get(Job, row.job_id) for row in rows}  # type: ignore[misc]


def end(session: Session, job: Job, status: str, losses: list[float] | None = None) -> None:
    job.status = status
    job.history = {"loss": losses or []}
    session.commit()


def view(session: Session, sweep_id: str) -> dict[str, Any]:
    session.expire_all()
    sweep = session.get(Sweep, sweep_id)
    assert sweep is not None
    trials = records.trials(session, sweep_id)
    return {"status": sweep.status, "trials": trials, "best": records.best(trials, "minimize")}


def test_trials_are_created_once_within_the_concurrency(session: Session) -> None:
    sweep_id = new_sweep(session)
    first = driver(session)
    assert len(first.drive().started) == 2
    assert first.drive().started == [], "a second pass starts nothing while two are queued"
    jobs = trial_jobs(session, sweep_id)
    assert sorted(jobs) == [0, 1]
    assert {job.sweep for job in jobs.values()} == {sweep_id}
    units = {job.spec["model"]["config"]["layers"][1]["config"]["units"] for job in jobs.values()}
    assert units <= set(range(2, 65))


def test_failed_trials_are_recorded_and_the_sweep_goes_on_to_its_end(session: Session) -> None:
    sweep_id = new_sweep(session)
    driver(session).drive()
    jobs = trial_jobs(session, sweep_id)
    end(session, jobs[0], "failed")
    end(session, jobs[1], "succeeded", [0.9, 0.5])
    restarted = driver(session)  # as after an API restart: nothing but the database
    report = restarted.drive()
    assert sorted(number for _, number in report.told) == [0, 1]
    assert sorted(number for _, number in report.started) == [2, 3]
    assert [t.status for t in view(session, sweep_id)["trials"]][:2] == ["failed", "succeeded"]
    jobs = trial_jobs(session, sweep_id)
    end(session, jobs[2], "pruned", [0.95])
    session.delete(jobs[3])  # a trial whose job was deleted counts as failed
    session.commit()
    restarted.drive()
    restarted.drive()
    seen = view(session, sweep_id)
    assert seen["status"] == "succeeded"
    assert [(t.number, t.status, t.value) for t in seen["trials"]] == [
        (0, "failed", None),
        (1, "succeeded", 0.5),
        (2, "pruned", 0.95),
        (3, "failed", None),
    ]
    assert seen["best"] is not None and seen["best"].number == 1
    total = session.scalar(
        select(func.count()).select_from(Trial).where(Trial.sweep_id == sweep_id)
    )
    assert total == 4, "the budget is spent, no more"


def test_a_sweep_whose_trials_all_fail_ends_failed(session: Session) -> None:
    sweep_id = new_sweep(session, max_trials=1, concurrent=1)
    driver(session).drive()
    end(session, trial_jobs(session, sweep_id)[0], "failed")
    driver(session).drive()
    session.expire_all()
    sweep = session.get(Sweep, sweep_id)
    assert sweep is not None and sweep.status == "failed"
    assert sweep.error is not None and "None of the 1 trials" in sweep.error["message"]


def test_a_cancelled_sweep_cancels_its_queued_trials_and_starts_none(session: Session) -> None:
    sweep_id = new_sweep(session)
    drive = driver(session)
    drive.drive()
    records.request_cancel(session, sweep_id, SERVICE)
    session.commit()
    assert drive.drive().started == []
    jobs = trial_jobs(session, sweep_id)
    assert {job.status for job in jobs.values()} == {"cancelled"}
    drive.drive()
    seen = view(session, sweep_id)
    assert seen["status"] == "cancelled"
    assert [t.status for t in seen["trials"]] == ["cancelled", "cancelled"]
    ids = {jobs[0].id, jobs[1].id}
    assert set(records.delete(session, sweep_id, SERVICE)) == ids
    session.commit()
    assert session.scalar(select(func.count()).select_from(Job)) == 0
