"""Model JSON → a Keras model, in safe mode, with or without allocating its weights.

The API builds every submitted model in a ``StatelessScope`` that defers variable creation, so
a 10-billion-parameter model is checked in milliseconds and without memory; the worker builds
the same JSON for real. Keras is imported inside the functions: the Celery parent process must
never initialise TensorFlow before it forks its pool.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.errors import DatasetMismatch, InvalidModel, LimitExceeded
from models.keras.allow_list import check_model_json
from models.keras.dialects.convert import LEGACY_CLASSES, LEGACY_MODULES, normalize
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

    def accepts(self, array_shape: tuple[int, ...]) -> bool:
        """Whether arrays of ``array_shape`` (batch first) can feed this input.

        Keras itself adds or drops a trailing axis of size 1, so (n,) feeds (None, 1) and
        (n, 1) feeds (None,).
        """
        expected = self.shape[1:]
        received = array_shape[1:]
        if len(received) == len(expected) + 1 and received[-1:] == (1,):
            received = received[:-1]
        elif len(received) + 1 == len(expected) and expected[-1:] == (1,):
            expected = expected[:-1]
        return len(array_shape) > 0 and (
            len(received) == len(expected)
            and all(e is None or e == r for e, r in zip(expected, received, strict=True))
        )

    def require(self, array_shape: tuple[int, ...], where: str, fix: str) -> None:
        """Raise DatasetMismatch, naming ``where`` and suggesting ``fix``, unless accepted."""
        if not self.accepts(array_shape):
            raise DatasetMismatch(
                f"`{where}` for input {self.name!r} has shape {list(array_shape)}, but the model "
                f"expects (batch, {', '.join(str(d) for d in self.shape[1:])}). {fix}",
                input=self.name,
                received=list(array_shape),
                expected=list(self.shape),
            )


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
        # A Sequential model has no output_names; its tensors' own names ("keras_tensor_59")
        # come from a process-wide counter, so name each output by the layer that makes it.
        output_names = [_layer_name(t) for t in outputs]
        if len(set(output_names)) != len(outputs):
            output_names = [t.name for t in outputs]
    return Signature(
        inputs=[TensorInfo(t.name, tuple(t.shape), str(t.dtype)) for t in model.inputs],
        outputs=[
            TensorInfo(name, tuple(t.shape), str(t.dtype))
            for name, t in zip(output_names, outputs, strict=True)
        ],
    )


def _layer_name(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) if history else None
    return str(getattr(layer, "name", None) or tensor.name)


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
        without_compile = {k: v for k, v in model_json.items() if k != "compile_config"}
        model = keras.models.model_from_json(json.dumps(without_compile))
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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Keras bolds parts of its messages for terminals


def _short(error: BaseException, limit: int = 600) -> str:
    text = " ".join(_ANSI.sub("", str(error)).split())
    # Keras wraps a layer's error in one "could not be deserialized ... config={...}" per
    # nesting level; the cause the user can act on (e.g. "Received: units=-3") comes last.
    text = text.rsplit("Exception encountered: ", 1)[-1]
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


def _check_initializers(model: keras.Model) -> None:
    """Run each weight's initializer on a tiny weight of the same rank.

    Building without allocating never calls them, and some fail only on the real weight
    ("identity" on a Conv2D kernel of rank 4): the job would be queued and fail on a worker.
    Sizes are capped at 2, so a huge weight costs nothing here; only the rank is what fails.

    Raises:
        InvalidModel: naming the weight, its shape and the initializer.
    """
    for variable in model.weights:
        initializer = getattr(variable, "_initializer", None)
        if initializer is None or not callable(initializer):
            continue
        small = tuple(min(int(size), 2) for size in variable.shape)
        try:
            initializer(small, dtype=variable.dtype)
        except Exception as error:
            name = type(initializer).__name__
            raise InvalidModel(
                f"Weight {variable.path!r} of shape {list(variable.shape)} cannot be initialized "
                f"by its initializer {name}: {_short(error)} Choose an initializer that suits "
                f"a weight of rank {len(variable.shape)}, e.g. glorot_uniform.",
                weight=variable.path,
                initializer=name,
            ) from None


def model_key(model_json: dict[str, Any]) -> str:
    """A hash of the model JSON's canonical form: equal for equal models, whatever key order."""
    canonical = json.dumps(model_json, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


DESCRIBED_CACHE_SIZE = 64
_described: OrderedDict[tuple[str, int, int, int], keras.Model] = OrderedDict()


def describe(model_json: dict[str, Any], settings: Settings, key: str | None = None) -> keras.Model:
    """Check and build a model JSON without allocating its weights (for validation, inspect).

    The same JSON is usually sent again and again (every job of an experiment), so the built,
    weightless model is kept by a hash of its canonical JSON (``key``, when the caller has it
    already). Callers must only read the model.

    Raises:
        ForbiddenModel, LimitExceeded, InvalidModel: the JSON is unsafe, too big or broken.
    """
    cache_key = (
        key or model_key(model_json),
        settings.max_params,
        settings.max_layers,
        settings.max_config_values,
    )
    with _BUILD_LOCK:
        if cache_key in _described:
            _described.move_to_end(cache_key)
            return _described[cache_key]
    keras3_json = checked_keras3_json(model_json, settings)
    with _BUILD_LOCK, _no_allocation():
        model = _from_json(keras3_json)
        check_params(model, settings)
        _check_initializers(model)
        _described[cache_key] = model
        while len(_described) > DESCRIBED_CACHE_SIZE:
            _described.popitem(last=False)
    return model


def build(model_json: dict[str, Any], settings: Settings) -> keras.Model:
    """Check and build a model JSON with real, initialised weights (for training).

    Raises:
        ForbiddenModel, LimitExceeded, InvalidModel: the JSON is unsafe, too big or broken.
    """
    keras3_json = checked_keras3_json(model_json, settings)
    with _BUILD_LOCK:
        with _no_allocation():
            check_params(_from_json(keras3_json), settings)
        return _from_json(keras3_json)


def checked_keras3_json(model_json: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The model JSON of any Keras dialect, checked, then normalised to Keras 3 and checked again.

    The first check reads the JSON as the user sent it (a Keras 2 JSON may name the classes that
    ``models.keras.dialects.convert`` converts); the second holds the converted JSON to the
    Keras 3 allow-list.

    Raises:
        ForbiddenModel, LimitExceeded, InvalidModel: the JSON is unsafe, too big or broken.
    """
    check_model_json(
        model_json, settings, extra_objects=LEGACY_CLASSES, extra_modules=LEGACY_MODULES
    )
    keras3_json = normalize(model_json).model_json
    check_model_json(keras3_json, settings)  # also for "keras3": the first check was wider
    return keras3_json
