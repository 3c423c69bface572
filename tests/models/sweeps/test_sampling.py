"""Optuna's side: the grid visits each point once, a seed repeats its draws, storage apart."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from models.db import get_engine
from models.sweeps import sampling
from models.sweeps.spec import SweepCreate
from tests.models.conftest import database_url
from tests.models.sweeps.test_space import sequential


def sweep_of(sampler: dict[str, Any], **budget: int) -> SweepCreate:
    return SweepCreate.model_validate(
        {
            "base": {
                "model": sequential(),
                "compile": {"loss": "mse"},
                "data": {"train": {"x": [[0.0] * 4], "y": [[0.0]]}},
                "fit": {"epochs": 2},
            },
            "parameters": {
                "units": {
                    "target": "/model/config/layers/@hidden/config/units",
                    "int": {"low": 4, "high": 16, "step": 4},
                },
                "rate": {
                    "target": "/model/config/layers/@drop/config/rate",
                    "float": {"low": 0.0, "high": 0.5, "step": 0.25},
                },
                "act": {
                    "target": "/model/config/layers/@hidden/config/activation",
                    "categorical": ["relu", "tanh"],
                },
            },
            "objective": {"metric": "loss"},
            "sampler": sampler,
            "budget": {"max_trials": 100, **budget},
        }
    )


def test_grid_enumerates_each_combination_once_even_with_trials_running(tmp_path: Path) -> None:
    sweep = sweep_of({"type": "grid", "seed": 3})
    store = sampling.storage(f"sqlite:///{tmp_path / 'remotefit.db'}")
    study = sampling.load(store, "grid", sweep)
    seen = []
    for index in range(24):  # 4 units x 3 rates x 2 activations
        number, params = sampling.ask(study, sweep)
        seen.append((params["units"], params["rate"], params["act"]))
        if index % 3 == 2:  # several running at once, told later
            for earlier in range(number - 2, number + 1):
                sampling.tell(study, earlier, "succeeded", float(earlier))
    expected = set(itertools.product([4, 8, 12, 16], [0.0, 0.25, 0.5], ["relu", "tanh"]))
    assert len(seen) == len(set(seen)) == 24
    assert set(seen) == expected


def test_random_with_a_seed_draws_the_same_parameters_twice(tmp_path: Path) -> None:
    runs = []
    for attempt in range(2):
        sweep = sweep_of({"type": "random", "seed": 11})
        study = sampling.load(sampling.storage(f"sqlite:///{tmp_path}/{attempt}/r.db"), "r", sweep)
        draws = []
        for _ in range(6):
            number, params = sampling.ask(study, sweep)
            sampling.tell(study, number, "succeeded", 1.0)
            draws.append(params)
        runs.append(draws)
    assert runs[0] == runs[1]
    assert len({str(d) for d in runs[0]}) > 1, "the draws vary from trial to trial"
    other = sweep_of({"type": "random", "seed": 12})
    study = sampling.load(sampling.storage(f"sqlite:///{tmp_path}/other/r.db"), "r", other)
    assert [sampling.ask(study, other)[1] for _ in range(3)] != runs[0][:3]


def test_a_restarted_process_does_not_replay_the_first_draws(tmp_path: Path) -> None:
    """Trial n's draw depends on the seed and n, not on the sampler object's history."""
    url = f"sqlite:///{tmp_path / 'remotefit.db'}"
    sweep = sweep_of({"type": "tpe", "seed": 5})
    study = sampling.load(sampling.storage(url), "tpe", sweep)
    first = [sampling.ask(study, sweep)[1] for _ in range(2)]
    reloaded = sampling.load(sampling.storage(url), "tpe", sweep)  # as after a restart
    later = sampling.ask(reloaded, sweep)[1]
    assert later not in first or len({str(f) for f in first}) == 1


def test_optuna_keeps_its_tables_in_a_file_of_its_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'remotefit.db'}"
    get_engine(url)
    sampling.load(sampling.storage(url), "apart", sweep_of({"type": "random"}))
    assert (tmp_path / "optuna.db").is_file()
    assert not [t for t in inspect(get_engine(url)).get_table_names() if "trial_" in t]


def test_an_orphan_trial_is_failed_and_its_parameters_asked_again(tmp_path: Path) -> None:
    sweep = sweep_of({"type": "random", "seed": 1})
    study = sampling.load(sampling.storage(f"sqlite:///{tmp_path / 'o.db'}"), "o", sweep)
    _, lost = sampling.ask(study, sweep)  # asked, then the process died before recording it
    assert sampling.settle_orphans(study, known=set(), retry=True) == [0]
    number, again = sampling.ask(study, sweep)
    assert number == 1 and again == lost


def test_objective_value_is_the_last_epochs() -> None:
    assert sampling.objective_value({"val_loss": [0.5, 0.3, 0.4]}, "val_loss") == 0.4
    assert sampling.objective_value({"val_loss": [0.5, None]}, "val_loss") is None
    assert sampling.objective_value({}, "val_loss") is None


def test_on_postgresql_optuna_keeps_a_schema_of_its_own(pg_session: Session) -> None:
    url = database_url(pg_session)
    sampling.load(sampling.storage(url), "apart", sweep_of({"type": "random"}))
    tables = pg_session.execute(
        text("SELECT table_schema, table_name FROM information_schema.tables")
    ).all()
    assert ("optuna", "trials") in tables and ("optuna", "studies") in tables
    assert not [name for schema, name in tables if schema == "public" and name == "trials"]
    sampling.storage.cache_clear()
    get_engine(url).dispose()
