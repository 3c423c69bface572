"""Predictions from a trained model, loaded from the store in safe mode and kept warm."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.data.references import align, load_leaf, unwrap
from models.keras.model import signature

if TYPE_CHECKING:
    import keras

CACHE_SIZE = 4
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


def predict(
    model_path: str | Path, x: Any, get: Any | None, batch_size: int | None, max_rows: int
) -> Any:
    """Run ``model.predict`` on ``x`` (inline arrays, or names read through ``get``).

    Returns:
        Nested lists for a single output, or a dict of them keyed by output name.
    """
    from models.errors import LimitExceeded

    model, lock = _load(model_path)
    sig = signature(model)
    leaves = align(x, sig.input_names, "x", get is None)
    arrays = [load_leaf(leaf, "x", get) for leaf in leaves]
    rows = max(len(a) for a in arrays)
    if rows > max_rows:
        raise LimitExceeded(
            f"Prediction on {rows} rows is over the limit of {max_rows} "
            "(REMOTEFIT_MAX_PREDICT_ROWS); split the request.",
            figure=rows,
            limit=max_rows,
        )
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
