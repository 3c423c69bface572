"""``compile`` arguments of a job → keyword arguments for ``Model.compile``, checked by name.

Keras 3 resolves loss and metric names lazily, at the first training step; a typo would only
fail on the worker. Every name is resolved here instead, so the API rejects it before queueing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.errors import InvalidSpec
from models.model_safety import check_model_json
from models.settings import Settings
from models.spec import CompileSpec

if TYPE_CHECKING:
    import keras

# Names that Model.compile understands but keras.metrics.get does not.
COMPILE_METRIC_ALIASES = {"accuracy", "acc", "crossentropy", "ce"}


def _check_object(value: dict[str, Any], where: str, settings: Settings) -> None:
    # A serialized optimizer/loss/metric goes through the same allow-list walk as a model.
    try:
        check_model_json({"class_name": "Model", "config": {"object": value}}, settings)
    except InvalidSpec as error:
        raise type(error)(error.message.replace("layer", "object"), path=where) from None


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
        _check_object(value, where, settings)
    elif not isinstance(value, str):
        raise InvalidSpec(
            f"`{where}` must be a {kind} name such as {_EXAMPLES[kind]!r} or a serialized "
            f'{kind} {{"class_name": ..., "config": {{...}}}}. Received: {value!r}.'
        )
    try:
        return getter(value)
    except Exception as error:
        raise InvalidSpec(
            f"`{where}` is not a {kind} Keras {keras.__version__} knows: {value!r} "
            f"({type(error).__name__}: {error}). Use a built-in name such as "
            f"{_EXAMPLES[kind]!r}; see https://keras.io/api/{kind}s/.",
            received=value,
        ) from None


_EXAMPLES = {"loss": "mse", "metric": "accuracy", "optimizer": "adam"}


def _per_output(
    kind: str, value: Any, output_names: list[str], where: str, settings: Settings, nested: bool
) -> Any:
    """Resolve ``value`` given once, as a list in output order, or as a dict by output name."""
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
        return {
            key: _per_output(kind, item, output_names, f"{where}.{key}", settings, False)
            for key, item in value.items()
        }
    if isinstance(value, list):
        if kind == "metric" and not nested:
            if len(output_names) > 1 and value and all(isinstance(v, list) for v in value):
                if len(value) != len(output_names):
                    raise InvalidSpec(
                        f"`{where}` as a list of lists needs one list per output "
                        f"({len(output_names)}: {output_names}). Received {len(value)} lists."
                    )
                return [
                    _per_output(kind, item, output_names, f"{where}[{i}]", settings, True)
                    for i, item in enumerate(value)
                ]
            return [_resolve(kind, item, f"{where}[{i}]", settings) for i, item in enumerate(value)]
        if kind == "metric":
            return [_resolve(kind, item, f"{where}[{i}]", settings) for i, item in enumerate(value)]
        if len(value) != len(output_names):
            raise InvalidSpec(
                f"`{where}` as a list needs one entry per model output, in order "
                f"({len(output_names)}: {output_names}). Received {len(value)} entries."
            )
        return [_resolve(kind, item, f"{where}[{i}]", settings) for i, item in enumerate(value)]
    return _resolve(kind, value, where, settings)


def _loss_weights(value: Any, output_names: list[str]) -> Any:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(output_names))
        if unknown:
            raise InvalidSpec(
                f"`compile.loss_weights` names {unknown}, which are not outputs of the model. "
                f"Expected keys among: {output_names}."
            )
    elif isinstance(value, list) and len(value) != len(output_names):
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
    return {
        "optimizer": _resolve("optimizer", spec.optimizer, "compile.optimizer", settings),
        "loss": _per_output("loss", spec.loss, output_names, "compile.loss", settings, False),
        "metrics": _per_output(
            "metric", spec.metrics, output_names, "compile.metrics", settings, False
        ),
        "loss_weights": _loss_weights(spec.loss_weights, output_names),
        "weighted_metrics": _per_output(
            "metric",
            spec.weighted_metrics,
            output_names,
            "compile.weighted_metrics",
            settings,
            False,
        ),
        "steps_per_execution": spec.steps_per_execution,
        "jit_compile": spec.jit_compile,
    }


def compile_model(model: keras.Model, spec: CompileSpec, settings: Settings) -> None:
    """Compile ``model`` as the job asks (see ``compile_arguments``)."""
    from models.keras_model import signature

    arguments = compile_arguments(spec, signature(model).output_names, settings)
    try:
        model.compile(**arguments)
    except Exception as error:
        raise InvalidSpec(
            f"`compile` failed: {type(error).__name__}: {error}. Check the compile arguments "
            "against the model's outputs."
        ) from None
