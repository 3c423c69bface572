"""Training as the worker runs it: in memory, and streamed from disk batch by batch."""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from models.data.datasets import ArrayReader
from models.keras.compiling import compile_model
from models.keras.model import build
from models.keras.training import train_and_evaluate
from models.settings import Settings
from models.spec import JobCreate


class Recorder:
    """A Reporter that keeps what it is told and never stops training."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.seconds: list[float] = []
        self.steps: list[int] = []  # each call's last batch, as progress reports it
        self.steps_per_execution: int | None = None

    def execution(self, steps_per_execution: int) -> None:
        self.steps_per_execution = steps_per_execution

    def batch_end(self, step: int, steps: int | None, logs: dict[str, Any]) -> None:
        self.steps.append(step)

    def epoch_end(self, model: Any, epoch: int, logs: dict[str, Any], seconds: float) -> None:
        self.epochs.append(logs)
        self.seconds.append(seconds)

    def stop_reason(self) -> str | None:
        return None


def _two_input_model() -> dict[str, Any]:
    import keras

    a, b = keras.Input((6,), name="a"), keras.Input((2,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    out = keras.layers.Dense(1, activation="sigmoid", name="out")(merged)
    return dict(json.loads(keras.Model([a, b], out).to_json()))


@pytest.fixture
def h5_dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["a"] = rng.random((600, 6), dtype=np.float32)
        file["b"] = rng.random((600, 2), dtype=np.float32)
        file["y"] = rng.integers(2, size=(600, 1)).astype(np.float32)
        file["w"] = np.ones(600, dtype=np.float32)
    return path


def _run(
    path: Path, stream_bytes: int, compile: dict[str, Any] | None = None, **fit: Any
) -> tuple[Any, Recorder]:
    return _train(path, stream_bytes, compile, **fit)[1:]


def _train(
    path: Path, stream_bytes: int, compile: dict[str, Any] | None = None, **fit: Any
) -> tuple[Any, Any, Recorder]:
    settings = Settings(data_dir=path.parent)
    spec = JobCreate.model_validate(
        {
            "model": _two_input_model(),
            "compile": {"loss": "binary_crossentropy", "metrics": ["accuracy"], **(compile or {})},
            "data": {
                "train": {"dataset": "d", "x": ["a", "b"], "y": "y", "sample_weight": "w"},
                "test": {"dataset": "d", "x": {"a": "a", "b": "b"}, "y": "y"},
            },
            "fit": {"epochs": 2, "batch_size": 64, **fit},
        }
    )
    import keras

    keras.utils.set_random_seed(0)
    model = build(spec.model, settings)
    compile_model(model, spec.compile, settings)

    def open_dataset(_: str) -> AbstractContextManager[ArrayReader]:
        return ArrayReader(path, "h5", settings)

    recorder = Recorder()
    outcome = train_and_evaluate(model, spec, open_dataset, recorder, 0, stream_bytes)
    return model, outcome, recorder


@pytest.mark.parametrize("stream_bytes", [1 << 30, 0], ids=["in-memory", "streamed"])
def test_trains_and_evaluates(h5_dataset: Path, stream_bytes: int) -> None:
    outcome, recorder = _run(h5_dataset, stream_bytes, validation_split=0.25)
    assert sorted(outcome.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(recorder.epochs) == 2
    # 450 training rows in batches of 64: 8 batches an epoch, reported once per call.
    per_call = recorder.steps_per_execution
    assert per_call is not None and 1 <= per_call <= 8
    calls = -(-8 // per_call)
    assert recorder.steps == [min(8, per_call * (i + 1)) for i in range(calls)] * 2
    assert sorted(outcome.evaluation) == ["accuracy", "loss"]


def test_each_epoch_reports_its_wall_time(h5_dataset: Path) -> None:
    started = time.perf_counter()
    _, recorder = _run(h5_dataset, 1 << 30, epochs=3)
    took = time.perf_counter() - started
    assert len(recorder.seconds) == 3 and all(seconds > 0 for seconds in recorder.seconds)
    assert sum(recorder.seconds) < took  # back to back, within the whole run


def test_streamed_and_in_memory_see_the_same_data(h5_dataset: Path) -> None:
    # Unshuffled, both walk the same batches: the results agree to float rounding.
    streamed, _ = _run(h5_dataset, 0, shuffle=False)
    in_memory, _ = _run(h5_dataset, 1 << 30, shuffle=False)
    assert streamed.evaluation is not None and in_memory.evaluation is not None
    assert streamed.evaluation.keys() == in_memory.evaluation.keys()
    assert abs(streamed.history["loss"][0] - in_memory.history["loss"][0]) < 1e-4


@pytest.mark.parametrize("samples", [1, 2, 3, 7, 10, 101])
@pytest.mark.parametrize("split", [0.05, 0.2, 0.5, 0.6, 0.9, 0.95])
def test_validation_cut_is_keras_own(samples: int, split: float) -> None:
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    from models.keras.training import validation_cut

    cut = validation_cut(samples, split)
    if cut in (0, samples):
        with pytest.raises(ValueError, match="not sufficient"):
            train_validation_split(np.zeros((samples, 1)), split)
    else:
        train, _ = train_validation_split(np.zeros((samples, 1)), split)
        assert len(train) == cut


class CancelledAfterTraining(Recorder):
    """A cancel that arrives once the last epoch has ended: while the model is evaluated."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.last = epochs

    def stop_reason(self) -> str | None:
        return "cancelled" if len(self.epochs) >= self.last else None


def test_a_cancel_after_the_last_epoch_stops_nothing(tmp_path: Path) -> None:
    import keras

    settings = Settings(data_dir=tmp_path)
    model_json = json.loads(
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")]).to_json()
    )
    rows = [[float(i), 1.0] for i in range(8)]
    spec = JobCreate.model_validate(
        {
            "model": model_json,
            "compile": {"loss": "mse"},
            "data": {"train": {"x": rows, "y": [[1.0]] * 8}, "test": {"x": rows, "y": [[1.0]] * 8}},
            "fit": {"epochs": 2, "batch_size": 4},
        }
    )
    model = build(spec.model, settings)
    compile_model(model, spec.compile, settings)
    reporter = CancelledAfterTraining(epochs=2)
    outcome = train_and_evaluate(model, spec, lambda _: None, reporter)
    assert len(reporter.epochs) == 2
    assert not outcome.stopped
    assert outcome.evaluation is not None and "loss" in outcome.evaluation


@pytest.mark.parametrize("stream_bytes", [1 << 30, 0], ids=["in-memory", "streamed"])
def test_steps_per_execution_changes_calls_not_training(
    h5_dataset: Path, stream_bytes: int
) -> None:
    # Keras' own behaviour (one step per call) against the worker's choice and a value that
    # does not divide the epoch: the same batches in the same order, the same updates.
    one_model, one, one_steps = _train(
        h5_dataset, stream_bytes, {"steps_per_execution": 1}, shuffle=False, epochs=3
    )
    auto_model, auto, auto_steps = _train(h5_dataset, stream_bytes, shuffle=False, epochs=3)
    odd_model, odd, odd_steps = _train(
        h5_dataset, stream_bytes, {"steps_per_execution": 3}, shuffle=False, epochs=3
    )
    assert one_steps.steps_per_execution == 1 and len(one_steps.steps) == 3 * 10
    assert auto_steps.steps_per_execution is not None and auto_steps.steps_per_execution > 1
    assert odd_steps.steps_per_execution == 3  # the job's value wins
    assert odd_steps.steps == [3, 6, 9, 10] * 3  # 600 rows in batches of 64: 10 batches
    for model, outcome in ((auto_model, auto), (odd_model, odd)):
        assert int(model.optimizer.iterations) == int(one_model.optimizer.iterations) == 30
        for key in one.history:
            np.testing.assert_allclose(outcome.history[key], one.history[key], rtol=1e-4)
        for mine, theirs in zip(model.get_weights(), one_model.get_weights(), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)
        assert outcome.evaluation == pytest.approx(one.evaluation, rel=1e-4)
