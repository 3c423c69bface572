"""``compile`` arguments of a job → keyword arguments for ``Model.compile``, checked by name.

Keras 3 resolves loss and metric names lazily, at the first training step; a typo would only
fail on the worker. Every name is resolved here instead, so the API rejects it before queueing.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from models.errors import InvalidSpec
from models.keras.allow_list import allowed_compile_objects, check_model_json
from models.settings import Settings
from models.spec import CompileSpec

if TYPE_CHECKING:
    import keras

# Names that Model.compile understands but keras.metrics.get does not.
COMPILE_METRIC_ALIASES = {"accuracy", "acc", "crossentropy", "ce"}


def _check_object(kind: str, value: dict[str, Any], where: str, settings: Settings) -> None:
    # A serialized optimizer/loss/metric goes through the same allow-list walk as a model,
    # with the classes of its own kind (keras.optimizers, keras.losses, ...) allowed too.
    try:
        check_model_json(
            {"class_name": "Model", "config": {"object": value}},
            settings,
            extra_objects=allowed_compile_objects(kind),
        )
    except InvalidSpec as error:
        message = error.message.replace("model.config.object", f"`{where}`")
        raise type(error)(message.replace("layer", "object"), path=where) from None


def _resolve(kind: str, value: Any, where: str, settings: Settings) -> Any:
    """Resolve one loss/metric/optimizer identifier, raising InvalidSpec on unknown names."""
    import keras

    getter = {
        "loss": keras.losses.get,
        "metric": keras.metrics.get,
        "optimizer": keras.optimizers.get,
    }[kind]
    if kind == "metric" and isinstance(value, str) and value in COMPILE_METRIC_ALIASES:
        return value
    if isinstance(value, dict):
        _check_object(kind, value, where, settings)
    elif not isinstance(value, str):
        raise InvalidSpec(
            f"`{where}` must be a {kind} name such as {_EXAMPLES[kind]!r} or a serialized "
            f'{kind} {{"class_name": ..., "config": {{...}}}}. Received: {value!r}.'
        )
    try:
        # Keras edits a config dict in place (keras.optimizers.get lowercases `class_name`);
        # the job's spec, stored after validation, must stay as the user sent it.
        return getter(copy.deepcopy(value))
    except Exception as error:
        raise InvalidSpec(
            f"`{where}` is not {_ARTICLES[kind]} {kind} Keras {keras.__version__} knows: "
            f"{value!r} ({type(error).__name__}: {error}). Use a built-in name such as "
            f"{_EXAMPLES[kind]!r}; see https://keras.io/api/{_PAGES[kind]}/.",
            received=value,
        ) from None


_EXAMPLES = {"loss": "mse", "metric": "accuracy", "optimizer": "adam"}
_ARTICLES = {"loss": "a", "metric": "a", "optimizer": "an"}
_PAGES = {"loss": "losses", "metric": "metrics", "optimizer": "optimizers"}


def _for_one_output(kind: str, value: Any, where: str, settings: Settings) -> Any:
    """One output's entry: null (no loss/metrics there), a loss, or a metric or list of them."""
    if value is None:
        return None
    if kind == "metric" and isinstance(value, list):
        return [_resolve(kind, item, f"{where}[{i}]", settings) for i, item in enumerate(value)]
    return _resolve(kind, value, where, settings)


def _per_output(
    kind: str, value: Any, output_names: list[str], where: str, settings: Settings
) -> Any:
    """Resolve ``value`` given once, as a list in output order, or as a dict by output name.

    The structures are those Keras 3 accepts when it builds its losses and metrics at the
    first step; anything else would fail only on the worker, so it is refused here.
    """
    if value is None:
        return None
    if isinstance(value, dict) and "class_name" not in value:
        unknown = sorted(set(value) - set(output_names))
        if unknown:
            raise InvalidSpec(
                f"`{where}` is keyed by output name, but {unknown} are not outputs of the "
                f"model. Expected keys among: {output_names}.",
                received=sorted(value),
            )
        missing = [name for name in output_names if name not in value]
        if kind == "loss" and missing:
            raise InvalidSpec(
                f"`{where}` is keyed by output name, but has no loss for {missing}; Keras 3 "
                f"needs a key for every output ({output_names}). Give null as the loss of an "
                "output that should not be trained.",
                received=sorted(value),
            )
        if kind == "loss" and len(output_names) == 1:
            # Keras gives a Sequential model no output names, and its compile then fails on
            # a dict of losses at the first step; for one output its one loss means the same.
            name = output_names[0]
            return _for_one_output(kind, value[name], f"{where}.{name}", settings)
        return {
            key: _for_one_output(kind, item, f"{where}.{key}", settings)
            for key, item in value.items()
        }
    if isinstance(value, list):
        if kind == "metric" and len(output_names) == 1:
            # One output: every metric applies to it (Keras flattens nested lists).
            return [
                _for_one_output(kind, item, f"{where}[{i}]", settings)
                if isinstance(item, list)
                else _resolve(kind, item, f"{where}[{i}]", settings)
                for i, item in enumerate(value)
            ]
        if len(value) != len(output_names):
            entry = "loss" if kind == "loss" else "metric or list of metrics"
            raise InvalidSpec(
                f"`{where}` as a list needs one entry (a {entry}) per model output, in order "
                f"({len(output_names)}: {output_names}). Received {len(value)} entries. To "
                "apply metrics to one output only, key them by output name.",
                received=len(value),
            )
        return [
            _for_one_output(kind, item, f"{where}[{i}]", settings) for i, item in enumerate(value)
        ]
    return _resolve(kind, value, where, settings)


def _loss_weights(value: Any, output_names: list[str]) -> Any:
    """Loss weights as a list in output order.

    Keras 3 pairs a dict of weights with a list of losses in sorted-key order, not by name, and
    fails on a dict that misses an output; a list in output order is right in every case.
    """
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(output_names))
        missing = [name for name in output_names if name not in value]
        if unknown or missing:
            raise InvalidSpec(
                f"`compile.loss_weights` is keyed by output name, but does not match the "
                f"model's outputs {output_names}: missing {missing}, unknown {unknown}. Give "
                "one weight per output.",
                received=sorted(value),
            )
        return [value[name] for name in output_names]
    if isinstance(value, list) and len(value) != len(output_names):
        raise InvalidSpec(
            f"`compile.loss_weights` needs one weight per output ({output_names}). "
            f"Received {len(value)}: {value}."
        )
    return value


def compile_arguments(
    spec: CompileSpec, output_names: list[str], settings: Settings
) -> dict[str, Any]:
    """Keyword arguments for ``Model.compile``, every name resolved and checked.

    Args:
        spec: the job's ``compile`` section.
        output_names: the model's output layer names, in order.
        settings: limits for serialized objects.

    Returns:
        Fresh objects (a new optimizer each call, since optimizers hold state).

    Raises:
        InvalidSpec: an unknown name, or a per-output structure that does not fit the model.
    """
    if spec.loss is None:
        raise InvalidSpec(
            '`compile.loss` is required to train or evaluate, e.g. "binary_crossentropy".'
        )
    loss = _per_output("loss", spec.loss, output_names, "compile.loss", settings)
    loss_weights = _loss_weights(spec.loss_weights, output_names)
    if loss_weights is not None and len(output_names) > 1 and not isinstance(loss, dict | list):
        # One loss for every output: Keras 3 counts it as one loss against several weights.
        loss = [loss] * len(output_names)
    return {
        "optimizer": _resolve("optimizer", spec.optimizer, "compile.optimizer", settings),
        "loss": loss,
        "metrics": _per_output("metric", spec.metrics, output_names, "compile.metrics", settings),
        "loss_weights": loss_weights,
        "weighted_metrics": _per_output(
            "metric", spec.weighted_metrics, output_names, "compile.weighted_metrics", settings
        ),
        "steps_per_execution": spec.steps_per_execution or 1,  # None: chosen before fit
        "jit_compile": spec.jit_compile,
    }


class _Passed:
    """Compile sections that resolved, with the output names and settings they were checked
    against; a bounded, thread-safe memory (the API checks from its thread pool)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def __contains__(self, key: str) -> bool:
        with self.lock:
            if key in self.keys:
                self.keys.move_to_end(key)
                return True
            return False

    def add(self, key: str) -> None:
        with self.lock:
            self.keys[key] = None
            if len(self.keys) > self.size:
                self.keys.popitem(last=False)


_PASSED = _Passed(256)


def check_compile(spec: CompileSpec, output_names: list[str], settings: Settings) -> None:
    """Raise what ``compile_arguments`` would raise, without building the same objects again.

    Resolving a compile section builds its Keras objects (an optimizer creates its variables):
    4 of the 15 ms the API spent on each submission of the seed job, for a section that is
    usually one it has checked before. Only sections that passed are remembered.
    """
    key = json.dumps(
        [spec.model_dump(mode="json"), output_names, settings.model_dump(mode="json")],
        sort_keys=True,
        default=str,
    )
    if key in _PASSED:
        return
    compile_arguments(spec, output_names, settings)
    _PASSED.add(key)


def compile_model(model: keras.Model, spec: CompileSpec, settings: Settings) -> None:
    """Compile ``model`` as the job asks (see ``compile_arguments``)."""
    from models.keras.model import signature

    arguments = compile_arguments(spec, signature(model).output_names, settings)
    try:
        model.compile(**arguments)
    except Exception as error:
        raise InvalidSpec(
            f"`compile` failed: {type(error).__name__}: {error}. Check the compile arguments "
            "against the model's outputs."
        ) from None
