"""Optuna's side of a sweep: its storage, the study, ask and tell.

Optuna keeps its own tables apart from the service's: in the schema ``optuna`` on PostgreSQL,
in ``optuna.db`` beside the database file on the embedded SQLite. The service's sweep and trial
rows stay the truth; Optuna only learns from them (``tell``) and proposes (``ask``).

Each ask builds its sampler afresh, seeded from the sweep's seed and the trial's number: the
parameters of trial *n* depend only on the seed and the trials told before it, never on how
long this process has lived, so a sweep resumed after a restart does not replay trial 0's draw.
"""

from __future__ import annotations

import contextlib
import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.db import get_engine
from models.sweeps.space import grid_values
from models.sweeps.spec import Parameter, SweepCreate

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
SCHEMA = "optuna"
SEED_STRIDE = 1_000_003


def study_name(sweep_id: str) -> str:
    return f"remotefit-sweep-{sweep_id}"


def _quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@lru_cache(maxsize=8)
def storage(database_url: str) -> optuna.storages.BaseStorage:
    """Optuna's storage for the service's database, kept apart from the service's tables."""
    import optuna

    _quiet()
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        with get_engine(database_url).begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(7370663)"))
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        own = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return optuna.storages.RDBStorage(
            own,
            engine_kwargs={
                "connect_args": {"options": f"-c search_path={SCHEMA}"},
                "pool_pre_ping": True,
            },
        )
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database).with_name("optuna.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(
            f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 30}}
        )
    return optuna.storages.InMemoryStorage()


def load(store: optuna.storages.BaseStorage, sweep_id: str, sweep: SweepCreate) -> optuna.Study:
    """The sweep's study, created on first use."""
    import optuna

    return optuna.create_study(
        storage=store,
        study_name=study_name(sweep_id),
        direction=sweep.objective.direction,
        pruner=pruner(sweep),
        load_if_exists=True,
    )


def pruner(sweep: SweepCreate) -> optuna.pruners.BasePruner:
    """The Optuna pruner a sweep's ``pruner`` asks for."""
    import optuna

    config = sweep.pruner
    if config.type == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.min_epochs,
            reduction_factor=config.reduction_factor,
            min_early_stopping_rate=0,
        )
    if config.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=max(1, min(5, sweep.budget.max_trials // 4)),
            n_warmup_steps=config.min_epochs,
        )
    return optuna.pruners.NopPruner()


def _seed(sweep: SweepCreate, number: int) -> int | None:
    if sweep.sampler.seed is None:
        return None
    return (sweep.sampler.seed * SEED_STRIDE + number) % 2**31


def sampler(sweep: SweepCreate, number: int) -> optuna.samplers.BaseSampler:
    """The sampler that draws trial ``number``."""
    import optuna

    if sweep.sampler.type == "grid":
        space = {
            name: list(range(len(grid_values(name, p)))) for name, p in sweep.parameters.items()
        }
        # The grid's order is shuffled by its seed, which must stay the same at every ask.
        return optuna.samplers.GridSampler(space, seed=sweep.sampler.seed or 0)
    seed = _seed(sweep, number)
    if sweep.sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = max(1, min(10, sweep.budget.max_trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def distribution(
    name: str, parameter: Parameter, grid: bool
) -> optuna.distributions.BaseDistribution:
    """How Optuna sees a parameter: categoricals and grid points as indices (a choice may be
    a list or an object, which Optuna cannot store)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if grid or parameter.categorical is not None:
        return CategoricalDistribution(list(range(len(grid_values(name, parameter)))))
    if parameter.int is not None:
        bounds = parameter.int
        return IntDistribution(bounds.low, bounds.high, log=bounds.log, step=bounds.step)
    assert parameter.float is not None
    floats = parameter.float
    return FloatDistribution(floats.low, floats.high, log=floats.log, step=floats.step)


def decode(sweep: SweepCreate, raw: dict[str, Any]) -> dict[str, Any]:
    """Optuna's parameters as the values they stand for."""
    grid = sweep.sampler.type == "grid"
    values = {}
    for name, parameter in sweep.parameters.items():
        if grid or parameter.categorical is not None:
            values[name] = grid_values(name, parameter)[int(raw[name])]
        elif parameter.int is not None:
            values[name] = int(raw[name])
        else:
            values[name] = float(raw[name])
    return values


def ask(study: optuna.Study, sweep: SweepCreate) -> tuple[int, dict[str, Any]]:
    """A new trial: its number and its parameters' values."""
    number = len(study.get_trials(deepcopy=False))
    study.sampler = sampler(sweep, number)
    grid = sweep.sampler.type == "grid"
    trial = study.ask({name: distribution(name, p, grid) for name, p in sweep.parameters.items()})
    return trial.number, decode(sweep, trial.params)


def tell(study: optuna.Study, number: int, status: str, value: float | None) -> None:
    """Tell Optuna how trial ``number`` ended: succeeded with a value, pruned, or failed (a
    cancelled trial, a failed one, one without the objective in its history)."""
    import optuna
    from optuna.trial import TrialState

    # Telling runs the sampler's after_trial; the grid's would call study.stop(), which only
    # works inside study.optimize. Told trials need no sampler.
    study.sampler = optuna.samplers.RandomSampler()
    if status == "succeeded" and value is not None and math.isfinite(value):
        study.tell(number, value, skip_if_finished=True)
    elif status == "pruned":
        study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)


def settle_orphans(study: optuna.Study, known: set[int], retry: bool) -> list[int]:
    """Fail the trials Optuna was asked for but the service never recorded (the process died
    between the two), asking again for their parameters when ``retry``; returns their numbers."""
    import optuna
    from optuna.trial import TrialState

    study.sampler = optuna.samplers.RandomSampler()  # as in tell()
    orphans = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number in known:
            continue
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if retry and trial.params:
            study.enqueue_trial(dict(trial.params), skip_if_exists=False)
        orphans.append(trial.number)
    if orphans:
        log.warning("sweep %s: trials %s were never recorded; asked again", study, orphans)
    return orphans


def delete(store: optuna.storages.BaseStorage, sweep_id: str) -> None:
    """Forget the sweep's study (nothing if it was never created)."""
    import optuna

    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=study_name(sweep_id), storage=store)


def objective_value(history: dict[str, Any], metric: str) -> float | None:
    """The objective of a trial: the metric at the last epoch that logged it (None when that
    is missing or not finite: a trial that diverged has no value)."""
    values = list(history.get(metric) or [])
    last = values[-1] if values else None
    if isinstance(last, int | float) and math.isfinite(last):
        return float(last)
    return None
