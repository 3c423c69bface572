"""One Keras 2 layer config → the config Keras 3 builds the same layer from.

Used by ``models.keras.dialects.convert`` for every layer of a tf.keras 2 or standalone Keras 2
model: layers Keras 3 renamed or removed, arguments it renamed or refuses, initializers, dtype
policies, and layers wrapped in layers. Pure data in, pure data out; Keras is only asked which
classes and ``__init__`` arguments exist.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from models.errors import InvalidModel
from models.keras.dialects.context import Context, ShapeHint
from models.keras.dialects.legacy import LEGACY_LAYERS, REMOVED_LAYERS, convert_legacy_layer

MODEL_CLASSES = ("Sequential", "Functional", "Model")
NOT_REGISTERED = {"registered_name": None}  # a built-in class, as Keras 3 writes it
# tf.keras' mixed-precision policy; Keras 3 calls it DTypePolicy.
LEGACY_OBJECTS = {"Policy"}
LEGACY_CLASSES = frozenset(LEGACY_LAYERS | set(REMOVED_LAYERS) | LEGACY_OBJECTS)
# tf-keras (the pip package) names the module of a nested model `tf_keras.src.engine.functional`.
LEGACY_MODULES = ("tf_keras",)

RENAMED_ARGUMENTS = {"LeakyReLU": {"alpha": "negative_slope"}}
# Arguments Keras 3 has no use for, whatever their value: the same maths without them.
VOID_ARGUMENTS = {
    "implementation",  # RNN kernel choice; Keras 3 picks its own
    "fused",  # BatchNormalization kernel choice
    "input_length",  # Embedding: the input shape already says it
    "query_shape",  # MultiHeadAttention build shapes; Keras 3 builds on the first call
    "key_shape",
    "value_shape",
}
# tf.keras' separable convolutions list the `kernel_*` arguments of Conv but never use them.
UNUSED_KERNEL_ARGUMENTS = {"kernel_initializer", "kernel_regularizer", "kernel_constraint"}
CLASS_VOID_ARGUMENTS = {
    "SeparableConv1D": UNUSED_KERNEL_ARGUMENTS,
    "SeparableConv2D": UNUSED_KERNEL_ARGUMENTS,
}
# Arguments Keras 3 lacks that change nothing at these (Keras 2 default) values.
DEFAULT_ONLY_ARGUMENTS: dict[str, Any] = {
    "time_major": False,
    "renorm": False,
    "renorm_clipping": None,
    "renorm_momentum": 0.99,
    "virtual_batch_size": None,
    "adjustment": None,
    "causal": False,
    "sparse": False,
    "ragged": False,
    "groups": 1,
    "softmax_robust_masking": False,
    "noise_shape": None,
    "trainable": True,
}
SHAPE_ARGUMENTS = ("batch_input_shape", "input_shape", "input_dim")


def label_of(class_name: str, config: Any, path: str) -> str:
    name = config.get("name") if isinstance(config, dict) else None
    return f"layer {name!r} ({class_name}) at {path}" if name else f"{class_name} at {path}"


@cache
def keras_names(namespace: str) -> frozenset[str]:
    """Class names of a Keras 3 namespace: ``layers``, ``initializers``, ..."""
    import keras

    module = getattr(keras, namespace)
    return frozenset(n for n in dir(module) if isinstance(getattr(module, n), type))


@cache
def accepted_arguments(class_name: str) -> frozenset[str] | None:
    """The keyword arguments a Keras 3 layer class takes (``None``: no such layer)."""
    import keras

    cls = getattr(keras.layers, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
        return None
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names |= {p.name for p in parameters if p.kind in named and p.name != "self"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break  # this class passes nothing further up
    return frozenset(names)


def batch_shape(value: Any, argument: str, label: str) -> list[int | None]:
    """A Keras 2 shape argument as a Keras 3 batch shape (batch dimension first)."""
    if argument == "input_dim":
        value = [value]
    if not isinstance(value, list) or not 0 < len(value) <= 8:
        raise InvalidModel(
            f"{label}: `{argument}` must be a list of at most 8 dimensions, as Keras writes it "
            f"(e.g. [null, 20]). Received: {value!r:.80}."
        )
    for dim in value:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 0):
            raise InvalidModel(
                f"{label}: `{argument}` holds {dim!r:.40}; each dimension must be a "
                "non-negative integer or null."
            )
    return list(value) if argument == "batch_input_shape" else [None, *value]


def _dtype_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        name = value["config"].get("name")
        if isinstance(name, str):
            # A mixed policy keeps float32 variables; the input of a model is float32 then.
            return "float32" if name.startswith("mixed_") else name
    return None


def convert_dtype(value: Any, label: str) -> Any:
    """A layer's ``dtype``: a name stays, a tf.keras ``Policy`` becomes a ``DTypePolicy``."""
    if value is None or isinstance(value, str):
        return value
    config = value.get("config") if isinstance(value, dict) else None
    name = config.get("name") if isinstance(config, dict) else None
    if not isinstance(name, str):
        raise InvalidModel(
            f"{label}: `dtype` must be a name such as 'float32' or a dtype policy "
            f'{{"class_name": "Policy", "config": {{"name": ...}}}}. Received: {value!r:.80}.'
        )
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": name},
    } | NOT_REGISTERED


def convert_object(value: dict[str, Any], context: Context, path: str) -> dict[str, Any]:
    """An initializer, regularizer, constraint or dtype policy, with the module Keras 3 wants."""
    class_name = value.get("class_name")
    config = value.get("config")
    if class_name in ("Policy", "DTypePolicy"):
        return dict(convert_dtype(value, path))
    if (
        class_name == "VarianceScaling"
        and isinstance(config, dict)
        and config.get("distribution") == "normal"
    ):
        # Keras 2's "normal" was already a truncated normal; Keras 3 says so by name.
        config = {**config, "distribution": "truncated_normal"}
    for namespace in ("initializers", "regularizers", "constraints"):
        if isinstance(class_name, str) and class_name in keras_names(namespace):
            return {
                "module": f"keras.{namespace}",
                "class_name": class_name,
                "config": config,
                "registered_name": None,
            }
    return value  # not Keras 3's: the allow-list check on the converted JSON names it


def _nested(value: Any, context: Context, path: str) -> Any:
    """A config value: wrapped layers and models, objects, or plain data as it is."""
    if isinstance(value, list):
        return [_nested(item, context, f"{path}[{index}]") for index, item in enumerate(value)]
    if not (isinstance(value, dict) and isinstance(value.get("class_name"), str)):
        return value
    class_name = value["class_name"]
    if class_name in MODEL_CLASSES:
        return context.convert_model(value, context, path)
    if class_name in keras_names("layers") or class_name in LEGACY_LAYERS | set(REMOVED_LAYERS):
        layer, hint = convert_layer(value, context, path)
        if hint is not None:
            context.warn(
                f"{label_of(class_name, value.get('config'), path)}: `{hint.argument}` was "
                "dropped; a wrapped layer takes its input shape from the layer around it."
            )
        return layer
    return convert_object(value, context, path)


def convert_layer(
    entry: dict[str, Any], context: Context, path: str
) -> tuple[dict[str, Any], ShapeHint | None]:
    """A Keras 2 layer (not a model) as Keras 3 reads it, and the input shape it carried.

    Raises:
        InvalidModel: the layer is malformed or has no Keras 3 counterpart.
        ForbiddenModel: the layer holds Python code (a legacy ``Merge`` with a function).
    """
    class_name, config = entry.get("class_name"), entry.get("config")
    if not isinstance(class_name, str) or not isinstance(config, dict):
        raise InvalidModel(
            f"The layer at {path} must be an object with `class_name` (a string) and `config` "
            f"(an object), as Keras writes it. Received keys: {sorted(map(str, entry))[:8]}."
        )
    label = label_of(class_name, config, path)
    if class_name in REMOVED_LAYERS:
        raise InvalidModel(
            f"{label} has no Keras 3 counterpart: {REMOVED_LAYERS[class_name]}. "
            "Change the model in your Keras and export it again."
        )
    config = dict(config)
    if class_name in LEGACY_LAYERS:
        class_name, config = convert_legacy_layer(class_name, config, context, label, path)
    hint = None
    if class_name == "InputLayer":
        config = _input_layer(config, label)
    else:
        hint = _pop_shape(class_name, config, label)
    config = _arguments(class_name, config, context, label, path)
    layer = {"module": "keras.layers", "class_name": class_name, "config": config}
    return {**layer, "registered_name": None}, hint


def _input_layer(config: dict[str, Any], label: str) -> dict[str, Any]:
    shape = config.pop("batch_input_shape", None)
    if shape is not None:
        config["batch_shape"] = batch_shape(shape, "batch_input_shape", label)
    if "dtype" in config:
        config["dtype"] = _dtype_name(config["dtype"])
    return config


def _pop_shape(class_name: str, config: dict[str, Any], label: str) -> ShapeHint | None:
    accepted = accepted_arguments(class_name) or frozenset()
    hint = None
    for argument in SHAPE_ARGUMENTS:
        if argument in accepted or argument not in config:
            continue  # Embedding's `input_dim` is its vocabulary size, not a shape
        value = config.pop(argument)
        if value is not None and hint is None:
            shape = batch_shape(value, argument, label)
            hint = ShapeHint(argument, shape, _dtype_name(config.get("dtype")))
    return hint


def _arguments(
    class_name: str, config: dict[str, Any], context: Context, label: str, path: str
) -> dict[str, Any]:
    accepted = accepted_arguments(class_name)
    renamed = RENAMED_ARGUMENTS.get(class_name, {})
    converted: dict[str, Any] = {}
    for key, value in config.items():
        key = renamed.get(key, key)
        if accepted is not None and key not in accepted:
            if key not in CLASS_VOID_ARGUMENTS.get(class_name, ()):
                _drop(key, value, context, label)
            continue
        if key == "dtype":
            value = convert_dtype(value, label)
        elif key.endswith("activation") and value == "hard_sigmoid":
            context.warn(
                f"{label}: `{key}='hard_sigmoid'` is clip(0.2 * x + 0.5, 0, 1) in Keras 2 but "
                "relu6(x + 3) / 6 in Keras 3 (slope 1/6, not 0.2); the model trains with "
                "Keras 3's curve."
            )
        else:
            value = _nested(value, context, f"{path}.config.{key}")
        converted[key] = value
    if class_name == "BatchNormalization" and isinstance(converted.get("axis"), list):
        axis = converted["axis"]
        if len(axis) != 1:
            raise InvalidModel(
                f"{label} normalises over axes {axis}; Keras 3's BatchNormalization takes one "
                "axis. Use LayerNormalization or GroupNormalization for several."
            )
        converted["axis"] = axis[0]
    return converted


def _drop(key: str, value: Any, context: Context, label: str) -> None:
    if key in VOID_ARGUMENTS:
        return
    if key in DEFAULT_ONLY_ARGUMENTS and value == DEFAULT_ONLY_ARGUMENTS[key]:
        return
    if key == "time_major":
        raise InvalidModel(
            f"{label} reads time-major inputs (`time_major=True`), which Keras 3 does not "
            "support. Transpose the data to (batch, time, features) and set it to false."
        )
    context.warn(
        f"{label}: argument `{key}`={value!r:.60} was dropped; Keras 3 has no such argument."
    )
