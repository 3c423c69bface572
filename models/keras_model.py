"""Model JSON → a Keras model, in safe mode, with or without allocating its weights.

The API builds every submitted model in a ``StatelessScope`` that defers variable creation, so
a 10-billion-parameter model is checked in milliseconds and without memory; the worker builds
the same JSON for real. Keras is imported inside the functions: the Celery parent process must
never initialise TensorFlow before it forks its pool.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.errors import InvalidModel, LimitExceeded
from models.model_safety import check_model_json
from models.settings import Settings

if TYPE_CHECKING:
    import keras

# Keras names layers from process-global counters; building two models at once in one process
# can interleave those counters, so builds are serialised (each takes milliseconds).
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a model: its layer name, shape (None = any) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Signature:
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def signature(model: keras.Model) -> Signature:
    """The inputs and outputs of a built model, in the model's own order."""
    output_names = list(getattr(model, "output_names", None) or [])
    outputs = model.outputs
    if len(output_names) != len(outputs):
        output_names = [t.name for t in outputs]
    return Signature(
        inputs=[TensorInfo(t.name, tuple(t.shape), str(t.dtype)) for t in model.inputs],
        outputs=[
            TensorInfo(name, tuple(t.shape), str(t.dtype))
            for name, t in zip(output_names, outputs, strict=True)
        ],
    )


@contextmanager
def _no_allocation() -> Iterator[None]:
    from keras.src.backend.common import global_state
    from keras.src.backend.common.stateless_scope import StatelessScope

    try:
        with StatelessScope(initialize_variables=False):
            yield
    finally:
        # The deferred variables would otherwise stay referenced (thread-local) forever.
        global_state.set_global_attribute("uninitialized_variables", [])


def _from_json(model_json: dict[str, Any]) -> keras.Model:
    import keras

    try:
        model = keras.models.model_from_json(json.dumps(model_json))
    except Exception as error:
        raise InvalidModel(
            f"The model JSON does not build in Keras {keras.__version__}: "
            f"{type(error).__name__}: {_short(error)}. Check the layer configuration; "
            "`POST /v1/models/inspect` shows what the server makes of it.",
            error_type=type(error).__name__,
        ) from None
    if not isinstance(model, keras.Model):
        raise InvalidModel(f"The JSON builds a {type(model).__name__}, not a Keras model.")
    if not model.built or not model.inputs:
        raise InvalidModel(
            "The model has no known input shape, so it cannot be built before training. "
            "Start a Sequential model with `keras.Input(shape=...)` (or give the first layer "
            "`input_shape`) and export it again with `model.to_json()`."
        )
    return model


def _short(error: BaseException, limit: int = 600) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_params(model: keras.Model, settings: Settings) -> int:
    """The parameter count, or LimitExceeded when it is over ``settings.max_params``."""
    count = int(model.count_params())
    if count > settings.max_params:
        raise LimitExceeded(
            f"The model has {count:,} parameters, over the limit of {settings.max_params:,} "
            "(REMOTEFIT_MAX_PARAMS). Make it smaller, or ask the operator for a larger limit.",
            figure=count,
            limit=settings.max_params,
        )
    return count


def describe(model_json: dict[str, Any], settings: Settings) -> keras.Model:
    """Check and build a model JSON without allocating its weights (for validation, inspect).

    Raises:
        ForbiddenModel, LimitExceeded, InvalidModel: the JSON is unsafe, too big or broken.
    """
    check_model_json(model_json, settings)
    with _BUILD_LOCK, _no_allocation():
        model = _from_json(model_json)
        check_params(model, settings)
    return model


def build(model_json: dict[str, Any], settings: Settings) -> keras.Model:
    """Check and build a model JSON with real, initialised weights (for training).

    Raises:
        ForbiddenModel, LimitExceeded, InvalidModel: the JSON is unsafe, too big or broken.
    """
    check_model_json(model_json, settings)
    with _BUILD_LOCK:
        with _no_allocation():
            check_params(_from_json(model_json), settings)
        return _from_json(model_json)
