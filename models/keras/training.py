"""The Keras side of a job: load its arrays, fit, evaluate, and save the results.

Nothing here knows about Celery or the database: progress goes to a ``Reporter`` the caller
supplies, which is how the worker records each epoch and learns that a job was cancelled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from models.data.references import align, load_leaf, unwrap
from models.keras import streaming
from models.keras.callbacks import build_callbacks
from models.keras.execution import choose_steps_per_execution
from models.keras.model import Signature, signature
from models.spec import DataSplit, JobCreate

if TYPE_CHECKING:
    import keras

ArrayGetter = Callable[[str], np.ndarray]
# Opens the arrays of a dataset id; entered once per dataset for the whole job.
DatasetOpener = Callable[[str], Any]


class Reporter(Protocol):
    """Where training reports to, and what tells it to stop."""

    def execution(self, steps_per_execution: int) -> None:
        """Before training: how many steps each call into TensorFlow runs (and so how many
        batches each ``batch_end`` stands for)."""

    def batch_end(self, step: int, steps: int | None, logs: dict[str, Any]) -> None:
        """After each call's batches: must be cheap (no I/O; it runs on the training thread)."""

    def epoch_end(
        self, model: keras.Model, epoch: int, logs: dict[str, Any], seconds: float
    ) -> None:
        """After each complete epoch: record it and checkpoint the model.

        ``seconds`` is the epoch's wall time, from the end of the one before (or from the start
        of training): all the job spent on it, the previous epoch's reporting included.
        """

    def stop_reason(self) -> str | None:
        """Why training must stop now (cancelled, time limit, ...), or None to go on."""


@dataclass
class SplitArrays:
    """x, y and sample_weight of one split: arrays, or array-likes read on demand from disk."""

    x: Any
    y: Any = None
    sample_weight: Any = None

    @property
    def rows(self) -> int:
        return streaming.length(self.x)

    def nbytes(self) -> int:
        return sum(streaming.nbytes(part) for part in (self.x, self.y, self.sample_weight))

    def in_memory(self) -> SplitArrays:
        def load(part: Any) -> Any:
            if part is None:
                return None
            if isinstance(part, list):
                return [np.asarray(a[()] if hasattr(a, "id") else a) for a in part]
            return np.asarray(part[()] if hasattr(part, "id") else part)  # h5py: read it all

        return SplitArrays(load(self.x), load(self.y), load(self.sample_weight))

    def batches(self, rows: range, batch_size: int, shuffle: bool) -> Any:
        return streaming.batches(self.x, self.y, self.sample_weight, rows, batch_size, shuffle)

    def as_validation(self, batch_size: int, streamed: bool) -> Any:
        if streamed:
            return self.batches(range(self.rows), batch_size, False)
        return tuple(part for part in (self.x, self.y, self.sample_weight) if part is not None)


@dataclass
class Outcome:
    history: dict[str, list[Any]] = field(default_factory=dict)
    evaluation: dict[str, float] | None = None
    stopped: bool = False


class _ServiceCallback:
    """Reports batches and epochs; stops training at the next batch when told to."""

    def __new__(cls, reporter: Reporter) -> Any:
        import keras

        class Callback(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.stopped = False

            def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
                self.mark = time.perf_counter()

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                # With N steps per call Keras names the call's last batch, which for the last
                # call of an epoch can lie past its end.
                steps = self.params.get("steps")
                done = batch + 1 if steps is None else min(batch + 1, steps)
                reporter.batch_end(done, steps, logs or {})
                if reporter.stop_reason():
                    self.stopped = True
                    self.model.stop_training = True

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                now = time.perf_counter()
                seconds, self.mark = now - self.mark, now
                if not self.stopped:  # an epoch cut short is not recorded nor checkpointed
                    reporter.epoch_end(self.model, epoch, dict(logs or {}), seconds)
                    if reporter.stop_reason() == "pruned":  # a weak trial ends with this epoch
                        self.stopped = True
                        self.model.stop_training = True

        return Callback()


def load_split(
    split: DataSplit, sig: Signature, role: str, open_dataset: DatasetOpener, stack: ExitStack
) -> SplitArrays:
    """The arrays of one split, lined up with the model's inputs and outputs."""
    where = f"data.{role}"
    get: ArrayGetter | None = None
    if split.dataset is not None:
        get = stack.enter_context(open_dataset(split.dataset)).lazy

    def arrays(ref: Any, names: list[str], part: str) -> Any:
        if ref is None:
            return None
        shared = part == "sample_weight"  # one array may weigh every output
        leaves = align(ref, names, f"{where}.{part}", split.dataset is None, shared)
        return unwrap([load_leaf(leaf, f"{where}.{part}", get) for leaf in leaves])

    return SplitArrays(
        x=arrays(split.x, sig.input_names, "x"),
        y=arrays(split.y, sig.output_names, "y"),
        sample_weight=arrays(split.sample_weight, sig.output_names, "sample_weight"),
    )


def validation_cut(samples: int, validation_split: float) -> int:
    """How many of ``samples`` Keras trains on with ``validation_split``: the rest validate.

    Keras' own rule (``train_validation_split``), which the streamed path and the API's check
    must share: 2 samples at 0.6 keep 0 for training, where ``int(2 * 0.6)`` held out 1.
    """
    return math.floor(samples * (1.0 - validation_split))


def _class_weight(spec: JobCreate) -> dict[int, float] | None:
    if not spec.fit.class_weight:
        return None
    return {int(key): float(value) for key, value in spec.fit.class_weight.items()}


def _set_steps_per_execution(
    model: keras.Model, spec: JobCreate, batch_size: int, steps: int, reporter: Reporter
) -> None:
    """The job's ``steps_per_execution``, or the worker's choice when it leaves it open."""
    chosen = spec.compile.steps_per_execution
    if chosen is None:
        chosen = choose_steps_per_execution(model, batch_size, steps)
        model.steps_per_execution = chosen  # read when fit traces its train function
    reporter.execution(chosen)


def train_and_evaluate(
    model: keras.Model,
    spec: JobCreate,
    open_dataset: DatasetOpener,
    reporter: Reporter,
    initial_epoch: int = 0,
    stream_bytes: int = 256 * 1024**2,
) -> Outcome:
    """Fit the compiled ``model`` and evaluate it, as the job spec asks.

    Args:
        model: a built, compiled model.
        spec: the job.
        open_dataset: opens a dataset by id as a context manager with ``lazy(name)``.
        reporter: receives batches and epochs, and says when to stop.
        initial_epoch: the epoch to start from (later than the spec's when resuming).
        stream_bytes: a split larger than this is read from disk batch by batch.

    Returns:
        The Keras history, the evaluation by metric name, and whether the job was stopped.
    """
    sig = signature(model)
    outcome = Outcome()
    batch_size = spec.fit.batch_size or 32
    with ExitStack() as stack:
        splits: dict[str, SplitArrays] = {}
        streamed: dict[str, bool] = {}
        for role in ("train", "validation", "test"):
            split = getattr(spec.data, role)
            if split is None:
                continue
            arrays = load_split(split, sig, role, open_dataset, stack)
            streamed[role] = arrays.nbytes() > stream_bytes
            splits[role] = arrays if streamed[role] else arrays.in_memory()
        train, validation = splits.get("train"), splits.get("validation")
        if spec.fit.epochs > initial_epoch and train is not None:
            callback = _ServiceCallback(reporter)
            validation_data = None
            if validation is not None:
                validation_data = validation.as_validation(batch_size, streamed["validation"])
            data: dict[str, Any] = {
                "x": train.x,
                "y": train.y,
                "sample_weight": train.sample_weight,
                "batch_size": spec.fit.batch_size,
                "shuffle": spec.fit.shuffle,
                "validation_split": spec.fit.validation_split if validation is None else 0.0,
            }
            cut = train.rows
            if validation is None and spec.fit.validation_split:
                cut = validation_cut(train.rows, spec.fit.validation_split)
            held_out = train.rows - cut
            if streamed["train"]:
                data = {"x": train.batches(range(cut), batch_size, spec.fit.shuffle)}
                if held_out:
                    validation_data = train.batches(range(cut, train.rows), batch_size, False)
            steps = spec.fit.steps_per_epoch or -(-(train.rows - held_out) // batch_size)
            _set_steps_per_execution(model, spec, batch_size, steps, reporter)
            history = model.fit(
                **data,
                epochs=spec.fit.epochs,
                initial_epoch=initial_epoch,
                validation_data=validation_data,
                class_weight=_class_weight(spec),
                steps_per_epoch=spec.fit.steps_per_epoch,
                validation_steps=spec.fit.validation_steps,
                validation_freq=spec.fit.validation_freq,
                callbacks=[*build_callbacks(spec.fit.callbacks), callback],
                verbose=0,
            )
            outcome.history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
            outcome.stopped = callback.stopped
        test = splits.get("test")
        # A cancel asked after the last epoch is too late to stop anything: the model is
        # trained, so it is evaluated as the job asks.
        late = reporter.stop_reason() in (None, "cancelled")
        if test is not None and not outcome.stopped and late:
            evaluate_size = spec.evaluate.batch_size or batch_size
            if streamed["test"]:
                inputs: dict[str, Any] = {"x": test.batches(range(test.rows), evaluate_size, False)}
            else:
                inputs = {
                    "x": test.x,
                    "y": test.y,
                    "sample_weight": test.sample_weight,
                    "batch_size": spec.evaluate.batch_size,
                }
            result = model.evaluate(
                **inputs, steps=spec.evaluate.steps, verbose=0, return_dict=True
            )
            # In the order of model.evaluate()'s list (model.metrics_names), so a client can
            # give back the same list a local evaluate returns.
            order = [name for name in model.metrics_names if name in result]
            order += [name for name in result if name not in order]
            outcome.evaluation = {name: float(result[name]) for name in order}
    return outcome


ARTIFACTS = {
    "weights": "weights.weights.h5",
    "keras2": "weights.keras2.h5",
    "keras": "model.keras",
    "h5": "model.h5",
}
CHECKPOINT = "checkpoint.weights.h5"  # weights and optimizer state after the last whole epoch


def save_keras2_weights(model: keras.Model, path: Path) -> None:
    """Weights in the legacy Keras 2 HDF5 layout, which tf-keras' ``load_weights`` reads."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)


def save_artifacts(model: keras.Model, writing: Callable[[str], Any]) -> Iterator[str]:
    """Save weights and the whole model; ``writing(name)`` yields a temporary path to write.

    Yields each artifact's key once it is safely in place.
    """
    import warnings

    for key, name in ARTIFACTS.items():
        with writing(name) as path:
            if key == "weights":
                model.save_weights(path)
            elif key == "keras2":
                save_keras2_weights(model, path)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the legacy-.h5 notice is for users
                    model.save(path)
        yield key
