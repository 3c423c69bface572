"""Moves sweeps along: tells Optuna how trials ended, asks it for new ones, ends the sweep.

Run periodically by the API (``api.sweep_driving``). A pass reads everything it needs from the
sweep and trial rows and the trials' jobs, so it can stop anywhere and the next pass, in this
process or in one started after a restart, carries on:

- a trial whose job ended is told to Optuna (succeeded with its objective, pruned, or failed:
  failed, cancelled, deleted, or without the objective in its history), once: the row's
  ``told`` flag and Optuna's ``skip_if_finished`` make a second telling harmless;
- a trial Optuna handed out that no row recorded (the API died between the two) is told failed
  and its parameters are asked for again, so none is lost;
- while the budget lasts and fewer than ``max_concurrent_trials`` of the sweep's trials are
  queued or running, a new trial is asked for and created as a job of the sweep's owner; its
  row and its job are committed together, before the next ask. The jobs wait their turn with
  every other job (``models.jobs.turns``), so a sweep of 100 trials starves nobody.

On PostgreSQL one API process at a time drives (an advisory lock), so two never ask at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from models.db import get_engine, session_scope
from models.jobs import records as jobs
from models.settings import Settings
from models.sweeps import sampling
from models.sweeps.records import cancel_trials, epochs_of
from models.sweeps.space import apply, grid_size
from models.sweeps.spec import SweepCreate
from models.tables import FINAL, Job, Sweep, Trial, User, utcnow

log = logging.getLogger(__name__)
DRIVE_LOCK = 7370664
"""PostgreSQL advisory lock held by the one driver at work."""


@dataclass
class PassReport:
    told: list[tuple[str, int]] = field(default_factory=list)
    started: list[tuple[str, int]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)


class Driver:
    """Drives every unfinished sweep of one database; keeps parsed sweeps between passes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._specs: dict[str, SweepCreate] = {}
        self._studies: dict[str, Any] = {}  # Optuna's study objects: its storage holds the state

    def drive(self) -> PassReport:
        """One pass over the sweeps with work to do; see the module's docstring."""
        url = self.settings.database_url
        report = PassReport()
        engine = get_engine(url)
        postgres = engine.dialect.name == "postgresql"
        with engine.connect() as lock:
            if postgres and not lock.scalar(text(f"SELECT pg_try_advisory_lock({DRIVE_LOCK})")):
                return report  # another API process is driving
            try:
                with session_scope(url) as session:
                    pending = _pending(session)
                for sweep_id in pending:
                    try:
                        with session_scope(url) as session:
                            self._drive_one(session, sweep_id, report)
                    except Exception:  # one sweep's trouble (deleted meanwhile) stops no other
                        log.warning("sweep %s: pass failed", sweep_id, exc_info=True)
                        self._studies.pop(sweep_id, None)
            finally:
                if postgres:
                    lock.execute(text(f"SELECT pg_advisory_unlock({DRIVE_LOCK})"))
                    lock.commit()
        return report

    def _spec(self, sweep: Sweep) -> SweepCreate:
        if sweep.id not in self._specs:
            self._specs[sweep.id] = SweepCreate.model_validate(sweep.spec)
        return self._specs[sweep.id]

    def _drive_one(self, session: Session, sweep_id: str, report: PassReport) -> None:
        sweep = session.get(Sweep, sweep_id, populate_existing=True)
        if sweep is None:
            self._specs.pop(sweep_id, None)
            self._studies.pop(sweep_id, None)
            return
        spec = self._spec(sweep)
        if sweep_id not in self._studies:
            store = sampling.storage(self.settings.database_url)
            self._studies[sweep_id] = sampling.load(store, sweep.id, spec)
        study = self._studies[sweep_id]
        rows = list(
            session.scalars(select(Trial).where(Trial.sweep_id == sweep.id).order_by(Trial.number))
        )
        self._settle(session, study, spec, rows, report)
        session.commit()
        stopping = sweep.cancel_requested or sweep.status in ("succeeded", "failed", "cancelled")
        sampling.settle_orphans(study, {row.number for row in rows}, retry=not stopping)
        if stopping:
            cancel_trials(session, sweep.id)  # a trial created as the cancel came in
            if sweep.status not in ("cancelled", "succeeded", "failed"):
                self._end(sweep, "cancelled", None, report)
            return
        self._launch(session, sweep, spec, study, rows, report)
        active = [row for row in rows if row.status in ("queued", "running")]
        budget = _budget(spec)
        if len(rows) >= budget and not active:
            scored = [r for r in rows if r.status == "succeeded" and r.value is not None]
            error = None
            if not scored:
                error = {
                    "code": "no_trial_succeeded",
                    "message": f"None of the {len(rows)} trials succeeded with a value of "
                    f"`{spec.objective.metric}`; see each trial's job for why.",
                }
            self._end(sweep, "succeeded" if scored else "failed", error, report)
        elif sweep.status == "queued" and any(row.status != "queued" for row in rows):
            sweep.status = "running"

    def _settle(
        self,
        session: Session,
        study: Any,
        spec: SweepCreate,
        rows: list[Trial],
        report: PassReport,
    ) -> None:
        """Bring each untold trial row up to its job; tell Optuna those that ended."""
        waiting = {row.job_id: row for row in rows if not row.told and row.job_id}
        found = {
            job_id: (status, history)
            for job_id, status, history in session.execute(
                select(Job.id, Job.status, Job.history).where(Job.id.in_(list(waiting)))
            )
        }
        for row in rows:
            if row.told:
                continue
            status, history = found.get(row.job_id or "", ("failed", {}))  # deleted: failed
            row.status, row.epochs = status, epochs_of(history)
            if status not in FINAL:
                continue
            row.value = sampling.objective_value(history or {}, spec.objective.metric)
            sampling.tell(study, row.number, status, row.value)
            row.told = True
            report.told.append((row.sweep_id, row.number))

    def _launch(
        self,
        session: Session,
        sweep: Sweep,
        spec: SweepCreate,
        study: Any,
        rows: list[Trial],
        report: PassReport,
    ) -> None:
        """Start trials while the budget and ``max_concurrent_trials`` allow."""
        budget = _budget(spec)
        active = sum(row.status in ("queued", "running") for row in rows)
        base = sweep.spec["base"]
        while active < spec.budget.max_concurrent_trials and len(rows) < budget:
            if not self._owner_may_queue(session, sweep.owner):
                return  # waits for the owner's queue to drain: a quota, not a refusal
            number, params = sampling.ask(study, spec)
            name = f"{sweep.name or 'sweep'} #{number}"
            job = jobs.create(session, apply(base, spec, params), name, sweep.owner)
            job.sweep = sweep.id
            row = Trial(sweep_id=sweep.id, number=number, job_id=job.id, params=params)
            session.add(row)
            session.commit()  # the row and its job together, before the next ask
            rows.append(row)
            active += 1
            report.started.append((sweep.id, number))

    def _owner_may_queue(self, session: Session, owner: str | None) -> bool:
        if owner is None:
            return True
        user = session.get(User, owner)
        limit = self.settings.max_queued
        if user is not None and user.max_queued is not None:
            limit = user.max_queued
        queued = session.scalar(
            select(func.count()).select_from(Job).where(Job.owner == owner, Job.status == "queued")
        )
        return int(queued or 0) < limit

    def _end(
        self, sweep: Sweep, status: str, error: dict[str, Any] | None, report: PassReport
    ) -> None:
        sweep.status = status
        sweep.error = error
        sweep.finished_at = sweep.finished_at or utcnow()
        report.ended.append(sweep.id)


def _budget(spec: SweepCreate) -> int:
    if spec.sampler.type == "grid":
        return min(spec.budget.max_trials, grid_size(spec))
    return spec.budget.max_trials


def _pending(session: Session) -> list[str]:
    """Sweeps with work left: unfinished ones, and ended ones with trials not yet told."""
    untold = select(Trial.sweep_id).where(Trial.told.is_(False))
    return list(
        session.scalars(
            select(Sweep.id)
            .where(or_(Sweep.status.in_(("queued", "running")), Sweep.id.in_(untold)))
            .order_by(Sweep.created_at)
        )
    )
