"""A worker that lost its claim writes nothing more: no artifact, epoch, event or deletion.

A real job runs in this process (``run_job``, real Keras, real database); at one moment of
its run another worker takes it over, as a redelivery does when the first is presumed dead,
and writes the checkpoint it resumes from. Whatever the moment, the first worker then
returns "lost", leaves that checkpoint as it is, records nothing on the row or in the events,
and writes no file after the takeover.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.data.store import LocalStore
from models.db import session_scope
from models.jobs import lifecycle, records, runner
from models.keras.training import ARTIFACTS, CHECKPOINT
from models.settings import Settings
from models.tables import Job, JobEvent
from tests.models.conftest import database_url

FIRST, SECOND = "host-a:1", "host-b:2"
THEIRS = b"the checkpoint the new owner resumes from"


def _spec() -> dict[str, Any]:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
    rows = [[float(i), 1.0] for i in range(64)]
    return {
        "model": json.loads(model.to_json()),
        "compile": {"loss": "mse", "optimizer": "sgd"},
        "data": {"train": {"x": rows, "y": [[1.0]] * 64}, "test": {"x": rows, "y": [[1.0]] * 64}},
        "fit": {"epochs": 3, "batch_size": 8},
    }


class Takeover:
    """The second worker: claims the job and writes the checkpoint it will resume from."""

    def __init__(self, settings: Settings, store: LocalStore, job_id: str) -> None:
        self.settings, self.store, self.job_id = settings, store, job_id
        self.last_event: int | None = None

    def __call__(self) -> None:
        if self.last_event is not None:
            return  # once
        with session_scope(self.settings.database_url) as session:
            claim = lifecycle.claim(session, self.job_id, SECOND, 5, 60, lambda _: True)
            assert claim == "resumed"
        with session_scope(self.settings.database_url) as session:
            self.last_event = session.scalar(select(func.max(JobEvent.id)))
        checkpoint = self.store.path("jobs", self.job_id, CHECKPOINT)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(THEIRS)


def _at_epoch_end(take_over: Takeover, monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner._Reporter.epoch_end

    def epoch_end(self: Any, *args: Any) -> None:
        take_over()
        real(self, *args)

    monkeypatch.setattr(runner._Reporter, "epoch_end", epoch_end)


def _around_artifacts(after: int) -> Callable[[Takeover, pytest.MonkeyPatch], None]:
    """Take the job over once ``after`` artifacts are in place (0: before the first)."""

    def install(take_over: Takeover, monkeypatch: pytest.MonkeyPatch) -> None:
        real = runner.save_artifacts

        def save_artifacts(model: Any, writing: Any) -> Iterator[str]:
            if after == 0:
                take_over()
            for count, key in enumerate(real(model, writing), start=1):
                yield key
                if count == after:
                    take_over()

        monkeypatch.setattr(runner, "save_artifacts", save_artifacts)

    return install


MOMENTS = {
    "while it trains": (_at_epoch_end, 0),
    "before its artifacts": (_around_artifacts(0), 0),
    "between two artifacts": (_around_artifacts(1), 1),
    "before it records the end": (_around_artifacts(len(ARTIFACTS)), len(ARTIFACTS)),
}


@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_a_worker_that_lost_its_claim_writes_nothing_more(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url(session),
        checkpoint_seconds=0,  # a checkpoint after every epoch: the first worker would write one
        heartbeat_seconds=0.2,
    )
    store = LocalStore(settings.store_root)
    job_id = records.create(session, _spec(), "taken-over").id
    session.commit()
    take_over = Takeover(settings, store, job_id)
    install, written_before = MOMENTS[moment]
    install(take_over, monkeypatch)

    assert runner.run_job(job_id, settings, FIRST) == "lost"

    assert take_over.last_event is not None, "the takeover never happened"
    assert store.path("jobs", job_id, CHECKPOINT).read_bytes() == THEIRS  # neither replaced
    present = [key for key, name in ARTIFACTS.items() if store.exists("jobs", job_id, name)]
    assert present == list(ARTIFACTS)[:written_before]  # only those written while it held
    assert not list(store.folder("jobs", job_id).glob(".tmp-*"))
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    assert (job.status, job.worker, job.attempts) == ("running", SECOND, 2)
    assert job.finished_at is None and not job.artifacts and job.evaluation is None
    later = session.scalars(select(JobEvent).where(JobEvent.id > take_over.last_event)).all()
    assert [(event.type, event.data) for event in later] == []
