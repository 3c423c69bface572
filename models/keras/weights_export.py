"""Trained weights for clients: the layout their Keras reads, or plain JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from models.errors import InvalidRequest, LimitExceeded


def keras2_model(model_json: dict[str, Any]) -> bool:
    """Whether a model JSON was written by Keras 2 (tf.keras, tf-keras, standalone Keras).

    Keras 3 marks every object with a ``module``; Keras 2 never did.
    """
    return isinstance(model_json, dict) and "module" not in model_json


def weights_json(path: str | Path, max_values: int) -> dict[str, Any]:
    """``model.get_weights()`` from a legacy-layout HDF5 file, as nested lists in order.

    Raises:
        LimitExceeded: more values than ``max_values``; download the HDF5 file instead.
        InvalidRequest: a weight is NaN or infinite, which JSON cannot carry.
    """
    names: list[str] = []
    arrays: list[np.ndarray] = []
    with h5py.File(path, "r") as file:
        for layer in file.attrs.get("layer_names", []):
            group = file[layer.decode() if isinstance(layer, bytes) else layer]
            for weight in group.attrs.get("weight_names", []):
                name = weight.decode() if isinstance(weight, bytes) else weight
                dataset = group[name]
                names.append(name)
                arrays.append(dataset)
        total = sum(int(np.prod(a.shape)) for a in arrays)
        if total > max_values:
            raise LimitExceeded(
                f"The model has {total:,} weight values, over the limit of {max_values:,} for "
                "JSON (REMOTEFIT_MAX_WEIGHTS_JSON_VALUES). Download the HDF5 weights instead "
                "(`?format=keras3` or `keras2`).",
                figure=total,
                limit=max_values,
            )
        values = [np.asarray(a) for a in arrays]
    for name, value in zip(names, values, strict=True):
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise InvalidRequest(
                f"Weight {name!r} holds NaN or infinite values (the training diverged), which "
                "JSON cannot carry. Download the HDF5 weights instead (`?format=keras3` or "
                "`keras2`), or train again with a lower learning rate. Received: format=json.",
                field="format",
                weight=name,
            )
    return {
        "names": names,
        "shapes": [list(v.shape) for v in values],
        "weights": [v.tolist() for v in values],
    }
