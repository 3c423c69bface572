"""Pruning at epoch ends, in the worker: is this trial weak enough to stop now?

The decision is Optuna's (``MedianPruner`` or ``SuccessiveHalvingPruner``, ASHA), made from the
intermediate values all the sweep's trials reported to the shared study, so it holds across
any number of workers. A step is a whole epoch: step 1 is the end of the first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from models.db import session_scope
from models.settings import Settings
from models.sweeps import sampling
from models.sweeps.spec import SweepCreate
from models.tables import Job, Sweep, Trial

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
EpochJudge = Callable[[int, dict[str, Any]], bool]
"""Called with a finished epoch (0-based, as Keras counts) and its logs: True to prune."""


def report(study: optuna.Study, number: int, step: int, value: float, final: bool) -> bool:
    """Report trial ``number``'s objective after ``step`` epochs; True when it is to be pruned.

    The last epoch is reported (later trials compare with it) but never pruned: the trial has
    done its work by then.
    """
    import optuna

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    trial = optuna.trial.Trial(study, trial_id)
    trial.report(value, step)
    return not final and trial.should_prune()


def judge_for(settings: Settings, job_id: str) -> EpochJudge | None:
    """The epoch-end check of a trial's job, or None for a job that is no sweep's trial (or
    a sweep that prunes nothing)."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        sweep_id = job.sweep if job is not None else None
        if sweep_id is None:
            return None
        sweep_row = session.get(Sweep, sweep_id)
        trial = session.scalar(
            select(Trial).where(Trial.sweep_id == sweep_id, Trial.job_id == job_id)
        )
        if sweep_row is None or trial is None:
            return None
        sweep = SweepCreate.model_validate(sweep_row.spec)
        number = trial.number
    if sweep.pruner.type == "none":
        return None
    metric = sweep.objective.metric
    epochs = sweep.base.fit.epochs
    study = sampling.load(sampling.storage(settings.database_url), sweep_id, sweep)

    def judge(epoch: int, logs: dict[str, Any]) -> bool:
        value = logs.get(metric)
        if value is None:
            return False  # not logged this epoch (validation_freq)
        value = float(value)
        if math.isnan(value):
            return True
        try:
            return report(study, number, epoch + 1, value, final=epoch + 1 >= epochs)
        except Exception:  # the sweep was cancelled or deleted meanwhile: train on
            log.warning("job %s: no pruning decision at epoch %d", job_id, epoch + 1, exc_info=True)
            return False

    return judge
