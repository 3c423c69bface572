"""Predictions from a trained model, loaded from the store in safe mode and kept warm."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.data.references import align, inline_array, leaf_shape, load_leaf, unwrap
from models.errors import DatasetMismatch, LimitExceeded
from models.keras.model import Signature, signature

if TYPE_CHECKING:
    import keras

CACHE_SIZE = 4
Shapes = Mapping[str, tuple[int, ...]]
_cache: OrderedDict[tuple[str, float], tuple[Any, threading.Lock]] = OrderedDict()
_cache_lock = threading.Lock()


def _load(path: str | Path) -> tuple[keras.Model, threading.Lock]:
    import keras

    path = Path(path)
    key = (str(path), path.stat().st_mtime)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    with _cache_lock:
        _cache[key] = (model, threading.Lock())
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return _cache[key]


def _check_inputs(sig: Signature, shapes: list[tuple[int, ...]], max_rows: int) -> None:
    """Each input's shape against the model's, and the number of rows, before any array is read.

    Raises:
        DatasetMismatch: a shape the model cannot take, no rows, or inputs of unequal rows.
        LimitExceeded: more rows than ``max_rows``.
    """
    if any(shape[:1] == (0,) for shape in shapes):
        raise DatasetMismatch("`x` has no rows; send at least one sample to predict on.")
    for tensor, shape in zip(sig.inputs, shapes, strict=True):
        tensor.require(shape, "x", "Send one row per sample, each shaped like the input.")
    rows = {shape[0] for shape in shapes}
    if len(rows) > 1:
        raise DatasetMismatch(
            f"The inputs of `x` disagree in their number of rows: {sorted(rows)}. Send the same "
            "samples to every input."
        )
    count = rows.pop()
    if count > max_rows:
        raise LimitExceeded(
            f"Prediction on {count} rows is over the limit of {max_rows} "
            "(REMOTEFIT_MAX_PREDICT_ROWS); split the request.",
            figure=count,
            limit=max_rows,
        )


def predict(
    model_path: str | Path,
    x: Any,
    dataset: tuple[Shapes, Callable[[], ContextManager[Any]]] | None,
    batch_size: int | None,
    max_rows: int,
) -> Any:
    """Run ``model.predict`` on ``x``: inline arrays, or array names of a dataset.

    Args:
        model_path: the trained ``.keras`` file.
        x: the inline arrays or the names (as a job's split gives them).
        dataset: the dataset's array shapes from the catalogue, and a function opening its
            reader (whose ``get(name)`` reads an array); shapes and rows are checked first.
        batch_size: ``model.predict``'s.
        max_rows: the most rows one request may predict on.

    Returns:
        Nested lists for a single output, or a dict of them keyed by output name.
    """
    model, lock = _load(model_path)
    sig = signature(model)
    leaves = align(x, sig.input_names, "x", dataset is None)
    if dataset is None:
        arrays = [inline_array(leaf, "x") for leaf in leaves]
        _check_inputs(sig, [tuple(a.shape) for a in arrays], max_rows)
    else:
        shapes, open_reader = dataset
        _check_inputs(sig, [leaf_shape(leaf, "x", shapes) for leaf in leaves], max_rows)
        with open_reader() as reader:
            arrays = [load_leaf(leaf, "x", reader.get) for leaf in leaves]
    with lock:
        result = model.predict(unwrap(arrays), batch_size=batch_size, verbose=0)
    if isinstance(result, dict):
        return {key: np.asarray(value).tolist() for key, value in result.items()}
    if isinstance(result, list | tuple):
        return {
            name: np.asarray(value).tolist()
            for name, value in zip(sig.output_names, result, strict=True)
        }
    return np.asarray(result).tolist()
