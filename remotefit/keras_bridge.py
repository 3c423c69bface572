"""``fit``, ``evaluate`` and ``predict`` of a local Keras model, run on a remotefit server.

The local model goes as what Keras gives: ``to_json()``, its compile configuration and its
current weights; the arrays are uploaded as one ``.npz``; the trained weights come back into the
local model. Works with Keras 3 and with tf-keras (Keras 2) models.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from remotefit.errors import RemoteFitError

# Optimizer arguments that mean the same in Keras 2 and 3 (Keras 2 adds keys Keras 3 refuses).
PORTABLE_OPTIMIZER_KEYS = {
    "learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "rho", "momentum", "nesterov",
    "centered", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
    "initial_accumulator_value",
}  # fmt: skip
REMOTE_CALLBACKS = {
    "EarlyStopping": (
        "monitor", "min_delta", "patience", "mode", "baseline", "restore_best_weights",
        "start_from_epoch",
    ),
    "ReduceLROnPlateau": (
        "monitor", "factor", "patience", "mode", "min_delta", "cooldown", "min_lr",
    ),
    "TerminateOnNaN": (),
}  # fmt: skip


def is_keras3(model: Any) -> bool:
    """Keras 3 (package ``keras``) rather than tf-keras / tf.keras 2 (``tf_keras``, ``keras 2``)."""
    for cls in type(model).__mro__:
        module = cls.__module__
        if module.startswith("keras.src"):
            return True
        if module.startswith(("tf_keras", "keras.engine", "tensorflow.")):
            return False
    return False


def _plain(value: Any) -> Any:
    """A loss or metric as the server takes it: a name, or {"class_name", "config"}."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        if "class_name" in value:
            if value.get("class_name") == "function":
                return value.get("config")  # a built-in function serialized by name
            config = {k: v for k, v in dict(value.get("config") or {}).items() if k != "reduction"}
            return {"class_name": value["class_name"], "config": config}
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if callable(value) and not hasattr(value, "get_config"):
        return value.__name__
    config = {k: v for k, v in value.get_config().items() if k not in ("reduction", "dtype")}
    return {"class_name": type(value).__name__, "config": _jsonable_config(config)}


def _jsonable_config(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=lambda o: getattr(o, "tolist", lambda: None)()))


def _optimizer(optimizer: Any) -> Any:
    if isinstance(optimizer, str):
        return optimizer
    if isinstance(optimizer, Mapping):
        name, config = optimizer.get("class_name"), dict(optimizer.get("config") or {})
    else:
        name, config = type(optimizer).__name__, optimizer.get_config()
    kept = {key: value for key, value in config.items() if key in PORTABLE_OPTIMIZER_KEYS}
    if not isinstance(kept.get("learning_rate"), int | float):
        kept.pop("learning_rate", None)  # a schedule object does not travel; the default does
    return {"class_name": name, "config": _jsonable_config(kept)}


def compile_spec(model: Any) -> dict[str, Any]:
    """The local model's ``compile()`` arguments, as a job's ``compile`` section."""
    if getattr(model, "optimizer", None) is None:
        raise RemoteFitError(
            "The model is not compiled. Call model.compile(optimizer=..., loss=...) first, "
            "as before a local fit."
        )
    if is_keras3(model):
        config = model.get_compile_config()
    else:
        config = dict(model._get_compile_args(user_metrics=True))  # tf-keras keeps them so
        config["optimizer"] = model.optimizer
    spec: dict[str, Any] = {"optimizer": _optimizer(config["optimizer"])}
    for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
        if config.get(key) is not None:
            spec[key] = _plain(config[key])
    return spec


def callbacks_spec(callbacks: list[Any] | None) -> list[dict[str, Any]]:
    """Local Keras callbacks the server can run, as specs; anything else is refused."""
    specs = []
    for callback in callbacks or []:
        name = type(callback).__name__
        if name in ("History", "ProgbarLogger"):
            continue
        if name not in REMOTE_CALLBACKS:
            raise RemoteFitError(
                f"The callback {name} cannot run on the server (only "
                f"{sorted(REMOTE_CALLBACKS)} can). Remove it from `callbacks`."
            )
        config = {}
        for attribute in REMOTE_CALLBACKS[name]:
            value = getattr(callback, attribute, None)
            if attribute == "min_delta" and isinstance(value, int | float):
                value = abs(value)  # Keras stores it signed by mode
            if isinstance(value, np.generic):
                value = value.item()
            if value is not None and isinstance(value, int | float | str | bool):
                config[attribute] = value
        specs.append({"class_name": name, "config": config})
    return specs


class Arrays:
    """Collects the arrays of one call under names, to upload as one ``.npz``."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, prefix: str, value: Any) -> Any:
        """Store ``value`` (an array, a list or a dict of arrays); returns the reference."""
        if value is None:
            return None
        if isinstance(value, Mapping):
            return {key: self.add(f"{prefix}.{key}", item) for key, item in value.items()}
        if isinstance(value, list | tuple) and value and hasattr(value[0], "shape"):
            return [self.add(f"{prefix}.{index}", item) for index, item in enumerate(value)]
        self.arrays[prefix] = np.asarray(value)
        return prefix

    def split(
        self, prefix: str, x: Any, y: Any = None, sample_weight: Any = None
    ) -> dict[str, Any]:
        """A data split (x, y, sample_weight) whose arrays are stored under ``prefix``."""
        return {
            "x": self.add(f"{prefix}x", x),
            "y": self.add(f"{prefix}y", y),
            "sample_weight": self.add(f"{prefix}sample_weight", sample_weight),
        }

    def upload(self, datasets: Any) -> str:
        with tempfile.TemporaryDirectory(prefix="remotefit-") as folder:
            path = Path(folder) / "arrays.npz"
            np.savez(path, **self.arrays)  # type: ignore[arg-type]
            return str(datasets.upload(path)["id"])


def save_local_weights(model: Any, folder: Path) -> Path:
    """The local model's current weights in its own Keras' HDF5 format."""
    path = folder / ("local.weights.h5" if is_keras3(model) else "local.h5")
    model.save_weights(path)
    return path


def load_remote_weights(model: Any, job: Any) -> None:
    """Load a finished job's weights into the local model, in the format its Keras reads."""
    with tempfile.TemporaryDirectory(prefix="remotefit-") as folder:
        if is_keras3(model):
            path = job.download_weights(Path(folder) / "trained.weights.h5")
        else:
            path = job.download_weights(Path(folder) / "trained.h5", format="keras2")
        model.load_weights(path)
