"""Everything checked about a job before it is queued, so a bad job never reaches a GPU.

The model is built without allocating weights, every compile name is resolved, callbacks are
instantiated, and every array reference is resolved to a shape and compared with the model's
inputs and outputs. Each problem is a 422 that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from models.data.references import align, leaf_shape
from models.errors import DatasetMismatch, LimitExceeded
from models.keras.callbacks import build_callbacks
from models.keras.compiling import check_compile
from models.keras.config_sizes import total_sized_values
from models.keras.memory import check_training_memory
from models.keras.model import Signature, TensorInfo, describe, signature
from models.keras.training import validation_cut
from models.settings import Settings
from models.spec import DataSplit, JobCreate

Shapes = Mapping[str, tuple[int, ...]]
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class CheckedJob:
    """What validation learned: the model's signature and the number of training samples."""

    signature: Signature
    parameters: int
    train_samples: int | None


def _check_bounds(spec: JobCreate, settings: Settings) -> None:
    bounds = [
        ("fit.epochs", spec.fit.epochs, settings.max_epochs, "REMOTEFIT_MAX_EPOCHS"),
        (
            "fit.batch_size",
            spec.fit.batch_size,
            settings.max_batch_size,
            "REMOTEFIT_MAX_BATCH_SIZE",
        ),
        (
            "evaluate.batch_size",
            spec.evaluate.batch_size,
            settings.max_batch_size,
            "REMOTEFIT_MAX_BATCH_SIZE",
        ),
    ]
    bounds.append(
        ("time_limit_s", spec.time_limit_s, settings.max_job_seconds, "REMOTEFIT_MAX_JOB_SECONDS")
    )
    for where, value, limit, variable in bounds:
        if value is not None and value > limit:
            raise LimitExceeded(
                f"`{where}` is {value}, over this server's limit of {limit} ({variable}).",
                figure=value,
                limit=limit,
            )


def _squeeze(shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _target_fits(array_shape: tuple[int, ...], tensor: TensorInfo, loss: object) -> bool:
    """Whether targets of ``array_shape`` suit an output, given its loss (if a plain name)."""
    if not isinstance(loss, str):
        return True  # a serialized loss may reshape targets as it likes
    expected, received = _squeeze(tensor.shape[1:]), _squeeze(array_shape[1:])
    same = len(expected) == len(received) and all(
        e is None or e == r for e, r in zip(expected, received, strict=True)
    )
    if same:
        return True
    if "sparse" in loss:
        # Integer class labels: one axis fewer than the output's class axis.
        head = expected[:-1]
        return len(head) == len(received) and all(
            e is None or e == r for e, r in zip(head, received, strict=True)
        )
    return False


def _loss_for(loss: object, index: int, name: str) -> object:
    if isinstance(loss, dict) and "class_name" not in loss:
        return loss.get(name)
    if isinstance(loss, list):
        return loss[index]
    return loss


def _check_split(
    role: str,
    split: DataSplit,
    sig: Signature,
    spec: JobCreate,
    shapes: Shapes | None,
) -> int:
    """Check one split's arrays against the model; returns its number of samples."""
    where = f"data.{role}"
    inline = split.dataset is None
    x_leaves = align(split.x, sig.input_names, f"{where}.x", inline)
    lengths: dict[str, int] = {}
    for tensor, leaf in zip(sig.inputs, x_leaves, strict=True):
        shape = leaf_shape(leaf, f"{where}.x", shapes)
        tensor.require(shape, f"{where}.x", "Reshape the array or change the model's input shape.")
        lengths[f"x[{tensor.name}]"] = shape[0]
    if split.y is None:
        if role != "train" or spec.fit.epochs > 0:
            raise DatasetMismatch(
                f"`{where}.y` is missing: training and evaluation need targets. Give the "
                "array of labels for every sample."
            )
    else:
        y_leaves = align(split.y, sig.output_names, f"{where}.y", inline)
        for index, (tensor, leaf) in enumerate(zip(sig.outputs, y_leaves, strict=True)):
            shape = leaf_shape(leaf, f"{where}.y", shapes)
            loss = _loss_for(spec.compile.loss, index, tensor.name)
            if not _target_fits(shape, tensor, loss):
                hint = (
                    " For integer class labels use a `sparse_` loss (e.g. "
                    "sparse_categorical_crossentropy), or one-hot encode them."
                    if len(shape) < len(tensor.shape)
                    else ""
                )
                raise DatasetMismatch(
                    f"`{where}.y` for output {tensor.name!r} has shape {list(shape)}, which "
                    f"does not match the output shape {list(tensor.shape)} with loss "
                    f"{loss!r}.{hint}",
                    output=tensor.name,
                    received=list(shape),
                    expected=list(tensor.shape),
                )
            lengths[f"y[{tensor.name}]"] = shape[0]
    if split.sample_weight is not None:
        w_leaves = align(
            split.sample_weight, sig.output_names, f"{where}.sample_weight", inline, shared=True
        )
        for tensor, leaf in zip(sig.outputs, w_leaves, strict=True):
            lengths[f"sample_weight[{tensor.name}]"] = leaf_shape(
                leaf, f"{where}.sample_weight", shapes
            )[0]
    if len(set(lengths.values())) > 1:
        raise DatasetMismatch(
            f"The arrays of `{where}` disagree in length (number of samples): {lengths}. "
            "x, y and sample_weight need one entry per sample each."
        )
    count = next(iter(lengths.values()))
    if count == 0:
        raise DatasetMismatch(f"`{where}` has no samples.")
    return count


def check_job(spec: JobCreate, datasets: Mapping[str, Shapes], settings: Settings) -> CheckedJob:
    """Validate a job spec fully, without allocating the model's weights.

    Args:
        spec: the submitted job.
        datasets: for each dataset id the job references, its arrays' shapes by name.
        settings: the server's limits.

    Raises:
        InvalidSpec (or a subclass): the first problem found, as a 422.
    """
    _check_bounds(spec, settings)
    model = describe(spec.model, settings)
    sig = signature(model)
    check_compile(spec.compile, sig.output_names, settings)  # resolves every name
    build_callbacks(spec.fit.callbacks)
    if spec.fit.class_weight and len(sig.outputs) > 1:
        raise DatasetMismatch(
            "`fit.class_weight` works only for models with a single output (a Keras 3 rule); "
            f"this model has {len(sig.outputs)}. Use `sample_weight` per output instead."
        )
    counts: dict[str, int] = {}
    for role in SPLITS:
        split = getattr(spec.data, role)
        if split is None:
            continue
        shapes = None
        if split.dataset is not None:
            if split.dataset not in datasets:
                raise DatasetMismatch(
                    f"`data.{role}.dataset` is {split.dataset!r}, but no dataset has that id. "
                    "Upload the file with `POST /v1/datasets` and use the id it returns.",
                    received=split.dataset,
                )
            shapes = datasets[split.dataset]
        counts[role] = _check_split(role, split, sig, spec, shapes)
    train = counts.get("train")
    if train is not None and spec.fit.validation_split and spec.data.validation is None:
        kept = validation_cut(train, spec.fit.validation_split)
        if kept in (0, train):
            raise DatasetMismatch(
                f"`fit.validation_split`={spec.fit.validation_split} of {train} samples keeps "
                f"{kept} for training and {train - kept} for validation (Keras keeps "
                "floor(samples * (1 - validation_split))); both need at least one sample. Give "
                "more samples, another validation_split, or a `data.validation` split.",
                received=spec.fit.validation_split,
            )
    train_split = spec.data.train
    if spec.fit.class_weight and train_split is not None and train_split.sample_weight is not None:
        raise DatasetMismatch(
            "`fit.class_weight` and `data.train.sample_weight` cannot be used together (a Keras "
            "rule: class weights become sample weights). Fold the class weights into "
            "`sample_weight`, or drop one of them."
        )
    if spec.fit.epochs > 0:
        tables = total_sized_values([spec.model, spec.compile.model_dump(mode="json")])
        check_training_memory(model, spec.fit.batch_size or 32, settings, tables)
    return CheckedJob(signature=sig, parameters=int(model.count_params()), train_samples=train)


def referenced_datasets(spec: JobCreate) -> set[str]:
    """The dataset ids a job's splits reference."""
    splits = (getattr(spec.data, role) for role in SPLITS)
    return {split.dataset for split in splits if split is not None and split.dataset}
