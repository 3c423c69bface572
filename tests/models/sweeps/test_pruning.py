"""ASHA and the median rule stop the trials known to be weak, from constructed histories."""

from __future__ import annotations

from typing import Any

import pytest

from models.sweeps import sampling
from models.sweeps.pruning import report
from models.sweeps.spec import SweepCreate
from tests.models.sweeps.test_sampling import sweep_of

EPOCHS = 9


def run(sweep: SweepCreate, curves: list[list[float]]) -> list[int]:
    """Trials one after another, each reporting its curve until pruned; epochs each trained."""
    import optuna

    study = sampling.load(optuna.storages.InMemoryStorage(), "constructed", sweep)
    trained = []
    for curve in curves:
        number, _ = sampling.ask(study, sweep)
        epochs = 0
        pruned = False
        for epoch, value in enumerate(curve, start=1):
            epochs = epoch
            if report(study, number, epoch, value, final=epoch == len(curve)):
                pruned = True
                break
        sampling.tell(study, number, "pruned" if pruned else "succeeded", curve[epochs - 1])
        trained.append(epochs)
    return trained


def with_pruner(pruner: dict[str, Any]) -> SweepCreate:
    sweep = sweep_of({"type": "random", "seed": 0}, max_trials=8)
    return sweep.model_copy(update={"pruner": type(sweep.pruner).model_validate(pruner)})


def curve(final: float) -> list[float]:
    """A loss falling from 1.0 towards ``final`` over the epochs."""
    return [final + (1.0 - final) * 0.5 ** (epoch + 1) for epoch in range(EPOCHS)]


def test_asha_stops_the_weak_trials_early_and_keeps_the_good_ones() -> None:
    sweep = with_pruner({"type": "asha", "min_epochs": 1, "reduction_factor": 3})
    finals = [0.10, 0.50, 0.60, 0.05, 0.70, 0.80, 0.55, 0.65, 0.02]
    trained = run(sweep, [curve(final) for final in finals])
    good = [index for index, final in enumerate(finals) if final <= 0.10]
    weak = [index for index, final in enumerate(finals) if final >= 0.50]
    assert all(trained[index] == EPOCHS for index in good), trained
    assert all(trained[index] == 1 for index in weak), trained
    assert sum(trained) / (EPOCHS * len(finals)) <= 0.45


def test_the_median_rule_stops_trials_worse_than_the_median() -> None:
    sweep = with_pruner({"type": "median", "min_epochs": 2})
    finals = [0.1, 0.2, 0.9, 0.15]
    trained = run(sweep, [curve(final) for final in finals])
    assert trained[0] == EPOCHS and trained[2] < EPOCHS and trained[2] >= 2


@pytest.mark.parametrize("kind", ["none"])
def test_no_pruner_trains_everything(kind: str) -> None:
    trained = run(with_pruner({"type": kind}), [curve(0.9), curve(0.1), curve(0.9)])
    assert trained == [EPOCHS] * 3
