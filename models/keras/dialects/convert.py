"""Model JSON of every Keras dialect → the JSON that Keras 3's ``model_from_json`` reads.

Users send what their Keras wrote: Keras 3's ``to_json()``; tf.keras of TF 2.x or the tf-keras
package; standalone Keras 2.2.x; Keras 2.0/2.1, whose Sequential config is a bare list of
layers; or the YAML of Keras 2's ``to_yaml()``. Keras 3 refuses all but the first
(``Could not locate class 'Sequential'``). ``normalize`` rewrites the others as pure data, layer
for layer, keeping names, shapes and parameter counts, and says in ``warnings`` what it had to
change. It raises ``InvalidModel`` naming the path on anything it cannot read; the allow-list of
``models.keras.allow_list`` checks the JSON before and after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from models.errors import InvalidModel
from models.keras.dialects.bare import fill_bare_classes
from models.keras.dialects.context import Context, ShapeHint
from models.keras.dialects.functional import convert_functional
from models.keras.dialects.layers import (
    LEGACY_CLASSES,
    LEGACY_MODULES,
    MODEL_CLASSES,
    NOT_REGISTERED,
    convert_layer,
)

__all__ = ["LEGACY_CLASSES", "LEGACY_MODULES", "Normalized", "normalize"]

KERAS3, TF_KERAS2, KERAS22, KERAS20 = "keras3", "tf.keras2", "keras2.2", "keras2.0"
MAX_NESTED_MODELS = 16  # models inside models, deeper than anyone builds


@dataclass(frozen=True)
class Normalized:
    """A model JSON in the Keras 3 dialect, the dialect it was sent in, and what changed."""

    model_json: dict[str, Any]
    dialect: str
    warnings: list[str] = field(default_factory=list)


def detect_dialect(model: dict[str, Any]) -> str:
    """The Keras that wrote a model JSON: keras3, tf.keras2, keras2.2 or keras2.0.

    Raises:
        InvalidModel: it is the JSON of Keras 1.
    """
    if isinstance(model.get("config"), list):
        return KERAS20  # Keras 2.0/2.1's Sequential: a bare list of layers
    version = model.get("keras_version")
    match = re.match(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    if match and isinstance(version, str):
        major, minor = int(match[1]), int(match[2])
        if major == 1:
            raise InvalidModel(
                f"The model JSON was written by Keras {version}; Keras 1 configs are not read "
                "here. Load the model in Keras 2 and save it again with model.to_json()."
            )
        if major >= 3:
            return KERAS3
        if "-tf" in version or minor >= 4:
            return TF_KERAS2
        return KERAS22 if minor >= 2 else KERAS20
    if "module" in model:
        return KERAS3  # Keras 3 writes `module` at the top; Keras 2 never did
    if model.get("class_name") == "Functional":
        return TF_KERAS2
    if model.get("class_name") == "Model":
        return KERAS22
    if _has_keras2_shapes(model.get("config")):
        return TF_KERAS2
    return KERAS3


def _has_keras2_shapes(config: Any) -> bool:
    layers = config.get("layers") if isinstance(config, dict) else None
    return isinstance(layers, list) and any(
        isinstance(layer, dict)
        and isinstance(layer.get("config"), dict)
        and "batch_input_shape" in layer["config"]
        for layer in layers
    )


def normalize(model: dict[str, Any]) -> Normalized:
    """The model JSON in the Keras 3 dialect, with the dialect it came in and any warnings.

    A Keras 3 JSON is returned as it is. Others are converted without changing layers, names,
    shapes or parameter counts wherever Keras 3 can express them; each change that is more
    than a new spelling is listed in ``warnings``. The input is never modified.

    Args:
        model: the parsed model JSON, already checked by ``models.keras.allow_list``.

    Returns:
        The converted JSON, the dialect (keras3, tf.keras2, keras2.2, keras2.0) and warnings.

    Raises:
        InvalidModel: the JSON is malformed, or uses a layer Keras 3 has no counterpart for.
        ForbiddenModel: it holds Python code in a place only Keras 2 read (a legacy ``Merge``).
    """
    if not isinstance(model, dict):
        raise InvalidModel(f"`model` must be a JSON object. Received: {type(model).__name__}.")
    dialect = detect_dialect(model)
    if dialect == KERAS3:
        completed, filled = fill_bare_classes(model)
        return Normalized(completed, KERAS3, filled)
    context = Context(dialect, convert_model=_nested_model)
    try:
        converted = convert_model(model, context, "model")
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
        # A shape of JSON no Keras writes, missed by the checks above: still the user's error.
        raise InvalidModel(
            f"The model JSON (dialect {dialect}) is malformed: {type(error).__name__}: "
            f"{str(error)[:200]}. Send model.to_json() as Keras wrote it."
        ) from None
    return Normalized(converted, dialect, context.warnings)


def _nested_model(entry: dict[str, Any], context: Context, path: str) -> dict[str, Any]:
    if path.count(".config.") >= MAX_NESTED_MODELS * 2:
        raise InvalidModel(f"The model at {path} is nested too deeply in other models.")
    return convert_model(entry, context, path)


def convert_model(entry: dict[str, Any], context: Context, path: str) -> dict[str, Any]:
    """A Keras 2 Sequential, Model or Functional (top-level or nested) in the Keras 3 form."""
    class_name, config = entry.get("class_name"), entry.get("config")
    if class_name == "Sequential" and isinstance(config, list | dict):
        return _sequential(config, context, f"{path}.config")
    if class_name in MODEL_CLASSES and isinstance(config, dict):
        return convert_functional(config, context, f"{path}.config", convert_entry)
    raise InvalidModel(
        f"The model at {path} must have `class_name` Sequential, Model or Functional and a "
        f"`config` object. Received: class_name={class_name!r:.40}, config of type "
        f"{type(config).__name__}."
    )


def convert_entry(
    entry: Any, context: Context, path: str
) -> tuple[dict[str, Any], ShapeHint | None]:
    """One entry of a model's layer list: a nested model or a layer."""
    if not isinstance(entry, dict):
        raise InvalidModel(
            f"The layer at {path} must be an object with `class_name` and `config`. "
            f"Received: {type(entry).__name__}."
        )
    if entry.get("class_name") in MODEL_CLASSES:
        return _nested_model(entry, context, path), None
    return convert_layer(entry, context, path)


def _sequential(config: list[Any] | dict[str, Any], context: Context, path: str) -> dict[str, Any]:
    name: Any = config.get("name") if isinstance(config, dict) else None
    trainable: Any = config.get("trainable") if isinstance(config, dict) else None
    layers: Any = config.get("layers") if isinstance(config, dict) else config
    if not isinstance(layers, list):
        raise InvalidModel(f"`{path}.layers` must be the list of the model's layers.")
    converted: list[dict[str, Any]] = []
    for index, layer in enumerate(layers):
        entry, hint = convert_entry(layer, context, f"{path}.layers[{index}]")
        if hint is not None:
            _place_input(entry, hint, converted, context, f"{path}.layers[{index}]")
        converted.append(entry)
    sequential: dict[str, Any] = {"name": name if isinstance(name, str) else "sequential"}
    if isinstance(trainable, bool):
        sequential["trainable"] = trainable
    sequential["layers"] = converted
    return {"module": "keras", "class_name": "Sequential", "config": sequential} | NOT_REGISTERED


def _place_input(
    entry: dict[str, Any],
    hint: ShapeHint,
    before: list[dict[str, Any]],
    context: Context,
    path: str,
) -> None:
    """Keras 2 put a Sequential model's input shape on its first layer; Keras 3 on an Input."""
    name = entry["config"].get("name", entry["class_name"])
    label = f"layer {name!r} ({entry['class_name']}) at {path}"
    if before:
        where = (
            f"the InputLayer {before[0]['config'].get('name')!r} before it already gives it"
            if before[0]["class_name"] == "InputLayer"
            else "it is not the first layer of the model"
        )
        context.warn(
            f"{label}: `{hint.argument}` was dropped; Keras 3 keeps input shapes on InputLayers "
            f"only, and {where}."
        )
        return
    input_name = f"{name}_input"
    input_config = {"batch_shape": hint.batch_shape, "dtype": hint.dtype or "float32"}
    before.append(
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {**input_config, "name": input_name},
            "registered_name": None,
        }
    )
    context.warn(
        f"{label}: `{hint.argument}` is deprecated; it was turned into an InputLayer "
        f"{input_name!r} of batch shape {hint.batch_shape}."
    )
