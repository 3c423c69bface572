"""``compile`` of a job → ``Model.compile`` arguments: every name resolved, every structure checked.

Keras 3 resolves names and per-output structures only at the first training step; whatever it
would refuse there must be refused here, before the job is queued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from models.errors import ForbiddenModel, InvalidSpec
from models.keras.compiling import _Passed, check_compile, compile_arguments, compile_model
from models.settings import Settings
from models.spec import CompileSpec

ONE = ["dense"]
TWO = ["label", "category"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def arguments(settings: Settings, outputs: list[str] = ONE, **compile: Any) -> dict[str, Any]:
    compile.setdefault("loss", "binary_crossentropy")
    return compile_arguments(CompileSpec(**compile), outputs, settings)


def refused(
    settings: Settings,
    outputs: list[str],
    *fragments: str,
    error: type[InvalidSpec] = InvalidSpec,
    **compile: Any,
) -> InvalidSpec:
    with pytest.raises(error) as caught:
        arguments(settings, outputs, **compile)
    assert caught.value.status_code == 422
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value


def two_by_two_model() -> keras.Model:
    features = keras.Input(shape=(8,), name="features")
    extra = keras.Input(shape=(3,), name="extra")
    trunk = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([features, extra]))
    label = keras.layers.Dense(1, activation="sigmoid", name="label")(trunk)
    category = keras.layers.Dense(4, activation="softmax", name="category")(trunk)
    return keras.Model([features, extra], [label, category])


def names(value: Any) -> Any:
    """Resolved losses/metrics, with each Keras object replaced by its class or function name."""
    if isinstance(value, dict):
        return {key: names(item) for key, item in value.items()}
    if isinstance(value, list):
        return [names(item) for item in value]
    if value is None or isinstance(value, str):
        return value
    return getattr(value, "__name__", type(value).__name__)


# --- names -------------------------------------------------------------------------------------


def test_names_resolve(settings: Settings) -> None:
    args = arguments(settings, optimizer="adam", loss="mse", metrics=["accuracy", "auc", "mae"])
    assert isinstance(args["optimizer"], keras.optimizers.Adam)
    assert names(args["loss"]) == "mean_squared_error"
    # "accuracy" is a compile-only alias, left for Model.compile to resolve.
    assert names(args["metrics"]) == ["accuracy", "AUC", "MeanAbsoluteError"]
    assert args["loss_weights"] is None
    assert args["weighted_metrics"] is None
    assert args["steps_per_execution"] == 1
    assert args["jit_compile"] == "auto"


def test_every_call_makes_a_fresh_optimizer(settings: Settings) -> None:
    assert arguments(settings)["optimizer"] is not arguments(settings)["optimizer"]
    assert isinstance(arguments(settings)["optimizer"], keras.optimizers.RMSprop)  # the default


@pytest.mark.parametrize(
    ("compile", "where", "name"),
    [
        ({"loss": "binary_crossentropyy"}, "compile.loss", "binary_crossentropyy"),
        ({"optimizer": "adamm"}, "compile.optimizer", "adamm"),
        ({"metrics": ["accuracy", "acuracy"]}, "compile.metrics[1]", "acuracy"),
        ({"weighted_metrics": ["aucc"]}, "compile.weighted_metrics[0]", "aucc"),
    ],
)
def test_unknown_names_are_named(
    settings: Settings, compile: dict[str, Any], where: str, name: str
) -> None:
    error = refused(settings, ONE, f"`{where}`", repr(name), "https://keras.io/api/", **compile)
    assert error.code == "invalid_spec"
    assert error.extra["received"] == name


def test_a_name_must_be_a_string_or_object(settings: Settings) -> None:
    refused(settings, ONE, "`compile.metrics[0]`", "metric name", "Received: 3", metrics=[3])


def test_loss_is_required(settings: Settings) -> None:
    with pytest.raises(InvalidSpec, match=r"`compile\.loss` is required"):
        compile_arguments(CompileSpec(), ONE, settings)


# --- per output --------------------------------------------------------------------------------


def test_per_output_objects_keyed_by_output_name(settings: Settings) -> None:
    args = arguments(
        settings,
        TWO,
        loss={"label": "binary_crossentropy", "category": "sparse_categorical_crossentropy"},
        metrics={"label": ["accuracy"], "category": ["sparse_categorical_accuracy"]},
        weighted_metrics={"category": "sparse_categorical_accuracy"},
    )
    assert names(args["loss"]) == {
        "label": "binary_crossentropy",
        "category": "sparse_categorical_crossentropy",
    }
    assert names(args["metrics"]) == {
        "label": ["accuracy"],
        "category": ["SparseCategoricalAccuracy"],
    }
    assert names(args["weighted_metrics"]) == {"category": "SparseCategoricalAccuracy"}


@pytest.mark.parametrize("argument", ["loss", "metrics", "weighted_metrics"])
def test_per_output_object_with_an_unknown_key(settings: Settings, argument: str) -> None:
    compile: dict[str, Any] = {
        "loss": {"label": "mse", "category": "mse"},
        argument: {"label": "mse", "categroy": "mse"},
    }
    error = refused(settings, TWO, f"`compile.{argument}`", "['categroy']", str(TWO), **compile)
    assert error.extra["received"] == ["categroy", "label"]


def test_loss_object_must_name_every_output(settings: Settings) -> None:
    # Keras 3 raises "Expected keys [...] in loss dict" at the first step otherwise.
    refused(settings, TWO, "['category']", "null", loss={"label": "binary_crossentropy"})
    args = arguments(settings, TWO, loss={"label": "binary_crossentropy", "category": None})
    assert names(args["loss"]) == {"label": "binary_crossentropy", "category": None}


def test_metrics_object_may_name_some_outputs(settings: Settings) -> None:
    args = arguments(settings, TWO, loss="mse", metrics={"label": "accuracy"})
    assert args["metrics"] == {"label": "accuracy"}


def test_lists_in_output_order(settings: Settings) -> None:
    args = arguments(
        settings,
        TWO,
        loss=["binary_crossentropy", None],
        metrics=[
            ["accuracy"],
            ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"],
        ],
        weighted_metrics=["accuracy", None],
    )
    assert names(args["loss"]) == ["binary_crossentropy", None]
    assert names(args["metrics"]) == [
        ["accuracy"],
        ["SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy"],
    ]
    assert names(args["weighted_metrics"]) == ["accuracy", None]


@pytest.mark.parametrize(
    ("compile", "where", "count"),
    [
        ({"loss": ["mse"]}, "compile.loss", 1),
        ({"loss": ["mse", "mse", "mse"]}, "compile.loss", 3),
        ({"loss": "mse", "metrics": [["accuracy"]]}, "compile.metrics", 1),
        # Keras 3 reads a flat list for several outputs as one entry per output, too.
        ({"loss": "mse", "metrics": ["accuracy"]}, "compile.metrics", 1),
        ({"loss": "mse", "weighted_metrics": ["mae", "mse", "mae"]}, "compile.weighted_metrics", 3),
    ],
)
def test_list_of_the_wrong_length(
    settings: Settings, compile: dict[str, Any], where: str, count: int
) -> None:
    error = refused(settings, TWO, f"`{where}`", "per model output", str(TWO), **compile)
    assert error.extra["received"] == count


def test_single_output_metrics_may_nest(settings: Settings) -> None:
    args = arguments(settings, ONE, metrics=[["accuracy", "mae"], "mse"])
    assert names(args["metrics"]) == [["accuracy", "MeanAbsoluteError"], "MeanSquaredError"]


def test_a_nested_list_reports_its_position(settings: Settings) -> None:
    refused(settings, TWO, "`compile.metrics[1][0]`", "nope", loss="mse", metrics=[[], ["nope"]])


# --- loss_weights ------------------------------------------------------------------------------


def test_loss_weights_object_becomes_a_list_in_output_order(settings: Settings) -> None:
    args = arguments(
        settings, TWO, loss=["mse", "mse"], loss_weights={"category": 0.5, "label": 1.0}
    )
    assert args["loss_weights"] == [1.0, 0.5]


@pytest.mark.parametrize(
    ("loss_weights", "fragments"),
    [
        ({"label": 1.0}, ["missing ['category']"]),
        ({"label": 1.0, "category": 1.0, "other": 2.0}, ["unknown ['other']"]),
        ([1.0], ["one weight per output", "Received 1"]),
    ],
)
def test_loss_weights_must_fit_the_outputs(
    settings: Settings, loss_weights: Any, fragments: list[str]
) -> None:
    refused(
        settings, TWO, "`compile.loss_weights`", *fragments, loss="mse", loss_weights=loss_weights
    )


def test_one_loss_with_weights_per_output_is_repeated(settings: Settings) -> None:
    # Keras 3 would count one loss against two weights and fail at the first step.
    args = arguments(settings, TWO, loss="mse", loss_weights=[1.0, 0.5])
    assert names(args["loss"]) == ["mean_squared_error"] * 2
    assert args["loss_weights"] == [1.0, 0.5]
    assert names(arguments(settings, TWO, loss="mse")["loss"]) == "mean_squared_error"


def test_loss_weights_reach_the_right_outputs(settings: Settings) -> None:
    """Compiled with what the service gives Keras, each output's loss gets its own weight."""
    rng = np.random.default_rng(0)
    x = [rng.random((32, 8)), rng.random((32, 3))]
    y = [rng.integers(2, size=(32, 1)), rng.integers(4, size=(32,))]
    model = two_by_two_model()
    model.compile(
        **arguments(
            settings,
            TWO,
            loss=["binary_crossentropy", "sparse_categorical_crossentropy"],
            loss_weights={"label": 1.0, "category": 0.0},
        )
    )
    score = model.evaluate(x, y, batch_size=32, return_dict=True, verbose=0)
    assert score["loss"] == pytest.approx(score["label_loss"], rel=1e-5)


# --- serialized objects ------------------------------------------------------------------------


def test_serialized_optimizer(settings: Settings) -> None:
    optimizer = arguments(
        settings, optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}}
    )["optimizer"]
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)


def test_the_spec_is_left_as_sent(settings: Settings) -> None:
    # keras.optimizers.get lowercases `class_name` in place; the stored job must not change.
    optimizer = {"class_name": "Adam", "config": {"learning_rate": 0.01}}
    spec = CompileSpec(optimizer=optimizer, loss="mse")
    compile_arguments(spec, ONE, settings)
    compile_arguments(spec, ONE, settings)  # as the worker does, after the API
    assert spec.optimizer == {"class_name": "Adam", "config": {"learning_rate": 0.01}}


def test_optimizer_as_keras_serializes_it(settings: Settings) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    serialized = keras.optimizers.serialize(keras.optimizers.SGD(learning_rate=schedule))
    optimizer = arguments(settings, optimizer=serialized)["optimizer"]
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"


def test_serialized_loss_and_metric(settings: Settings) -> None:
    args = arguments(
        settings,
        loss=keras.losses.serialize(keras.losses.BinaryCrossentropy(from_logits=True)),
        metrics=[{"class_name": "AUC", "config": {"num_thresholds": 50}}],
    )
    assert args["loss"].get_config()["from_logits"] is True
    (auc,) = args["metrics"]
    assert isinstance(auc, keras.metrics.AUC)
    assert auc.num_thresholds == 50


@pytest.mark.parametrize(
    ("optimizer", "fragment"),
    [
        (
            {"module": "os", "class_name": "Adam", "config": {"learning_rate": 0.01}},
            "module 'os'",
        ),
        (
            {"class_name": "Adam", "config": {}, "registered_name": "Custom>Adam"},
            "'Custom>Adam'",
        ),
        ({"class_name": "function", "config": "os.system"}, "Python code"),
        ({"class_name": "BinaryCrossentropy", "config": {}}, "'BinaryCrossentropy'"),
        ({"class_name": "Optimizer", "config": {}}, "'Optimizer'"),
    ],
)
def test_serialized_optimizer_outside_the_allow_list(
    settings: Settings, optimizer: dict[str, Any], fragment: str
) -> None:
    error = refused(
        settings, ONE, "`compile.optimizer`", fragment, error=ForbiddenModel, optimizer=optimizer
    )
    assert error.code == "forbidden_model"
    assert error.extra["path"] == "compile.optimizer"
    assert "layer" not in error.message


def test_serialized_loss_may_not_wrap_a_function(settings: Settings) -> None:
    loss = {
        "class_name": "LossFunctionWrapper",
        "config": {"fn": {"class_name": "function", "config": "system", "module": "os"}},
    }
    refused(settings, ONE, "`compile.loss`", error=ForbiddenModel, loss=loss)


# --- compile_model -----------------------------------------------------------------------------


def test_compile_model_compiles_as_the_job_asks(settings: Settings) -> None:
    model = two_by_two_model()
    spec = CompileSpec(
        optimizer="adam",
        loss={"label": "binary_crossentropy", "category": "sparse_categorical_crossentropy"},
        metrics=[["accuracy"], ["sparse_categorical_accuracy"]],
    )
    compile_model(model, spec, settings)
    assert model.compiled
    assert isinstance(model.optimizer, keras.optimizers.Adam)


def test_a_checked_section_is_remembered_only_with_its_outputs_and_limits(
    settings: Settings, tmp_path: Path
) -> None:
    per_output = CompileSpec(loss={"label": "mse", "category": "mse"})
    check_compile(per_output, TWO, settings)
    check_compile(per_output, TWO, settings)  # remembered
    with pytest.raises(InvalidSpec, match="category"):
        check_compile(per_output, ["label", "other"], settings)  # other outputs: checked anew
    serialized = CompileSpec(loss="mse", optimizer={"class_name": "Adam", "config": {}})
    check_compile(serialized, ONE, settings)
    strict = Settings(data_dir=tmp_path, max_model_json_bytes=10)
    with pytest.raises(InvalidSpec):
        check_compile(serialized, ONE, strict)  # stricter limits: checked anew


def test_a_section_that_failed_fails_every_time(settings: Settings) -> None:
    bad = CompileSpec(loss="mse", optimizer="adamw_typo")
    for _ in range(2):
        with pytest.raises(InvalidSpec, match="adamw_typo"):
            check_compile(bad, ONE, settings)


def test_the_memory_of_checked_sections_forgets_the_least_recent() -> None:
    passed = _Passed(2)
    passed.add("a")
    passed.add("b")
    assert "a" in passed  # now the most recent
    passed.add("c")
    assert "a" in passed and "c" in passed and "b" not in passed
