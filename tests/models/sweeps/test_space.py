"""Targets: JSON Pointers with `@name` into Sequential and functional JSON, types, refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.sweeps.space import InvalidParameter, apply, check_targets, corners, grid, resolve
from models.sweeps.spec import SweepCreate


def sequential() -> dict[str, Any]:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    return dict(json.loads(model.to_json()))


def functional() -> dict[str, Any]:
    import keras

    inputs = keras.Input(shape=(4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(keras.layers.Dropout(0.5, name="drop")(hidden))
    return dict(json.loads(keras.Model(inputs, outputs, name="fn").to_json()))


def sweep_of(model: dict[str, Any], parameters: dict[str, Any], **extra: Any) -> SweepCreate:
    base = {
        "model": model,
        "compile": {
            "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
            "loss": "mse",
        },
        "data": {"train": {"x": [[0.0] * 4] * 4, "y": [[0.0]] * 4}},
        "fit": {"epochs": 2, "batch_size": 2},
    }
    return SweepCreate.model_validate(
        {"base": base, "parameters": parameters, "objective": {"metric": "loss"}, **extra}
    )


UNITS = {"target": "/model/config/layers/@hidden/config/units", "int": {"low": 4, "high": 64}}
RATE = {"target": "/model/config/layers/@drop/config/rate", "float": {"low": 0.0, "high": 0.5}}
LR = {
    "target": "/compile/optimizer/config/learning_rate",
    "float": {"low": 1e-4, "high": 1e-1, "log": True},
}


@pytest.mark.parametrize("make", [sequential, functional], ids=["sequential", "functional"])
def test_at_name_targets_resolve_and_apply(make: Any) -> None:
    sweep = sweep_of(make(), {"units": UNITS, "rate": RATE, "lr": LR})
    base = sweep.base.model_dump(mode="json")
    check_targets(sweep, base)
    assert resolve(base, UNITS["target"]) == 8
    trial = apply(base, sweep, {"units": 32, "rate": 0.25, "lr": 0.01})
    assert resolve(trial, UNITS["target"]) == 32
    assert resolve(trial, RATE["target"]) == 0.25
    assert resolve(trial, LR["target"]) == 0.01
    assert resolve(base, UNITS["target"]) == 8, "the base is left as it was"
    layers = trial["model"]["config"]["layers"]
    assert [layer["config"]["units"] for layer in layers if layer["class_name"] == "Dense"] == [
        32,
        1,
    ]


def test_targets_set_several_values_at_once() -> None:
    both = {
        "targets": [
            "/model/config/layers/@hidden/config/units",
            "/model/config/layers/@out/config/units",
        ],
        "categorical": [2, 3],
    }
    sweep = sweep_of(sequential(), {"width": both})
    trial = apply(sweep.base.model_dump(mode="json"), sweep, {"width": 3})
    assert resolve(trial, both["targets"][0]) == resolve(trial, both["targets"][1]) == 3


@pytest.mark.parametrize(
    ("parameter", "phrase"),
    [
        ({"target": "/model/config/layers/@nope/config/units", "int": {"low": 1, "high": 2}},
         "no element of the list"),
        ({"target": "/fit/batch_sizes", "int": {"low": 1, "high": 2}}, "has no key"),
        ({"target": "/model/config/layers/1/class_name", "categorical": ["Lambda"]}, "class_name"),
        ({"target": "/model/config/layers/@hidden/module", "categorical": ["os"]}, "module"),
        ({"target": "/model/config/layers/@hidden/config/units", "float": {"low": 1, "high": 2}},
         "only replace a real number"),
        ({"target": "/model/config/layers/@hidden/config/activation", "int": {"low": 1, "high": 2}},
         "may only replace an integer"),
        ({"target": "/model/config/layers/@hidden/config/activation", "categorical": ["relu", 3]},
         "every choice must have the type"),
        ({"target": "/model/config/layers/@hidden/config",
          "categorical": [{"units": 3, "nested": {"registered_name": "x"}}]}, "registered_name"),
        ({"target": "/model/config/layers/@hidden/config/activation",
          "categorical": [{"class_name": "Lambda", "config": {}}]}, "Lambda"),
        ({"target": "/name", "categorical": ["a"]}, "must start with"),
    ],
)  # fmt: skip
def test_each_bad_target_is_refused_naming_the_parameter(
    parameter: dict[str, Any], phrase: str
) -> None:
    sweep = sweep_of(sequential(), {"p": parameter})
    with pytest.raises(InvalidParameter) as caught:
        check_targets(sweep, sweep.base.model_dump(mode="json"))
    assert "parameters.p" in caught.value.message
    assert caught.value.extra["parameter"] == "p"
    assert phrase in caught.value.message, caught.value.message


def test_corners_are_all_lows_all_highs_and_each_choice() -> None:
    batch = {"target": "/fit/batch_size", "categorical": [1, 2, 4, 8]}
    sweep = sweep_of(sequential(), {"units": {**UNITS, "int": {"low": 4, "high": 64, "step": 7}},
                                    "batch": batch})  # fmt: skip
    points = [params for _, params in corners(sweep)]
    assert points[0] == {"units": 4, "batch": 1}
    assert points[1] == {"units": 60, "batch": 8}, "the highest value the step reaches"
    assert {"units": 4, "batch": 2} in points and {"units": 4, "batch": 4} in points


def test_grid_needs_steps_for_floats() -> None:
    sweep = sweep_of(sequential(), {"rate": RATE}, sampler={"type": "grid"})
    with pytest.raises(InvalidParameter, match="needs a `step`"):
        grid(sweep)
    stepped = {**RATE, "float": {"low": 0.0, "high": 0.5, "step": 0.25}}
    assert grid(sweep_of(sequential(), {"rate": stepped})) == {"rate": [0.0, 0.25, 0.5]}


def test_a_grid_too_large_is_refused_before_it_is_listed() -> None:
    huge = {**UNITS, "int": {"low": 1, "high": 10**15}}
    sweep = sweep_of(sequential(), {"units": huge}, sampler={"type": "grid"})
    with pytest.raises(InvalidParameter, match="over the limit"):
        grid(sweep)
