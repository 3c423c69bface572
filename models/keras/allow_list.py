"""Checks a model JSON against an allow-list before Keras deserialises any of it.

Keras' safe mode stops marshalled ``Lambda`` code, but a model config can still name arbitrary
modules, registered custom objects, layers that load files (``TFSMLayer``) or lookup layers whose
vocabulary is a path (see SECURITY.md for the CVEs). The walk below rejects all of those, and
bounds size, nesting and layer count, naming the offending layer in the message.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from models.errors import ForbiddenModel, InvalidModel, LimitExceeded
from models.keras.config_sizes import check_sized
from models.settings import Settings

# Layers that run user code, load outside files or wrap other frameworks' modules.
DENIED_LAYERS = {
    "Lambda": "it runs arbitrary Python code (marshalled bytecode)",
    "TFSMLayer": "it loads a SavedModel from a path on the server",
    "TorchModuleWrapper": "it unpickles a PyTorch module",
    "JaxLayer": "it calls arbitrary Python functions",
    "FlaxLayer": "it calls arbitrary Python functions",
    "Layer": "a bare base Layer has no behaviour to train",
    "Wrapper": "a bare base Wrapper has no behaviour to train",
}
MODEL_CLASSES = {"Sequential", "Functional", "Model"}
# Layers whose `vocabulary` (or similar) may be a file path that Keras would open.
PATH_ARGUMENTS = {
    "StringLookup": ("vocabulary",),
    "IntegerLookup": ("vocabulary",),
    "TextVectorization": ("vocabulary", "idf_weights"),
}
CODE_CLASS_NAMES = {"__lambda__", "__function__", "function", "__tensor__"}
# Markers Keras writes for plain data: every functional model references its layers' input
# tensors as `{"class_name": "__keras_tensor__", "config": {shape, dtype, keras_history}}`.
DATA_CLASS_NAMES = {"__keras_tensor__"}


def _keras_names(namespace: Any, base: type | None = None) -> set[str]:
    names = set()
    for name in dir(namespace):
        member = getattr(namespace, name)
        if isinstance(member, type) and (base is None or issubclass(member, base)):
            names.add(name)
    return names


def allowed_layers() -> set[str]:
    """Layer class names that may appear in a model: Keras' own, minus the denied ones."""
    import keras

    return (_keras_names(keras.layers, keras.layers.Layer) - set(DENIED_LAYERS)) | MODEL_CLASSES


def allowed_objects() -> set[str]:
    """Non-layer class names that may appear nested in a layer config."""
    import keras

    names: set[str] = set()
    for namespace in (
        keras.initializers,
        keras.regularizers,
        keras.constraints,
        keras.dtype_policies,
    ):
        names |= _keras_names(namespace)
    return names


# Base and wrapper classes: abstract, or holding a Python function (`fn`) rather than a name.
COMPILE_BASES = {"Optimizer", "OptimizerMap", "LearningRateSchedule", "Loss", "Metric"}
COMPILE_BASES |= {"LossFunctionWrapper", "MeanMetricWrapper"}


def allowed_compile_objects(kind: str) -> set[str]:
    """Class names a serialized optimizer, loss or metric (``kind``) of ``compile`` may use."""
    import keras

    namespaces = {
        "optimizer": (keras.optimizers, keras.optimizers.schedules),
        "loss": (keras.losses,),
        "metric": (keras.metrics,),
    }[kind]
    names: set[str] = set()
    for namespace in namespaces:
        names |= _keras_names(namespace)
    return names - COMPILE_BASES


def _depth(value: Any, max_depth: int) -> int:
    """Nesting depth of a JSON value, computed without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return depth
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def _objects(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict in the JSON with its path, for messages such as ``layers[3].config``."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            yield where, node
            stack.extend((child, f"{where}.{key}") for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(node))


def _layer_label(where: str, node: dict[str, Any]) -> str:
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return f"layer {name!r} ({node.get('class_name')}) at {where}" if name else where


def check_model_json(
    model: dict[str, Any],
    settings: Settings,
    extra_objects: Collection[str] = (),
    extra_modules: Collection[str] = (),
) -> None:
    """Reject a model JSON that is too big or asks for anything outside the allow-list.

    Args:
        model: the parsed ``model.to_json()``.
        settings: limits on size, depth and layer count.
        extra_objects: more class names to allow (a serialized optimizer, loss or metric, or
            the Keras 2 classes that ``models.keras.dialects.convert`` converts).
        extra_modules: more module prefixes to allow besides ``keras`` (``tf_keras``, which the
            Keras 2 dialect names and ``models.keras.dialects.convert`` replaces).

    Raises:
        LimitExceeded: the JSON is over a size, depth or layer-count limit, or an object's
            config sizes a table over ``settings.max_config_values`` (``config_sizes``).
        ForbiddenModel: a class, module or argument that could run code or read files.
        InvalidModel: the JSON is not a Keras model.
    """
    size = len(json.dumps(model, separators=(",", ":")))
    if size > settings.max_model_json_bytes:
        raise LimitExceeded(
            f"The model JSON is {size} bytes, over the limit of "
            f"{settings.max_model_json_bytes} bytes (REMOTEFIT_MAX_MODEL_JSON_BYTES).",
            figure=size,
            limit=settings.max_model_json_bytes,
        )
    depth = _depth(model, settings.max_json_depth)
    if depth > settings.max_json_depth:
        raise LimitExceeded(
            f"The model JSON is nested more than {settings.max_json_depth} levels deep "
            "(REMOTEFIT_MAX_JSON_DEPTH); Keras never writes configs that deep.",
            figure=depth,
            limit=settings.max_json_depth,
        )
    if not isinstance(model.get("class_name"), str) or not isinstance(
        model.get("config"), dict | list
    ):
        raise InvalidModel(
            "`model` is not a Keras model JSON: expected an object with `class_name` (e.g. "
            '"Sequential") and `config`, as written by model.to_json(). '
            f"Received keys: {sorted(model)[:10]}."
        )
    if model["class_name"] not in MODEL_CLASSES:
        raise InvalidModel(
            f"`model.class_name` must be one of {sorted(MODEL_CLASSES)}; send the JSON of a "
            f"whole model, not of a single layer. Received: {model['class_name']!r}."
        )
    layers_allowed, objects_allowed = allowed_layers(), allowed_objects() | set(extra_objects)
    modules = ("keras", *extra_modules)
    layer_count = -1  # the root model is not one of its layers
    # A compiled model's to_json() carries its compile_config; it is never deserialized here
    # (the job's `compile` section compiles the model), so it is not walked either.
    walked = {key: value for key, value in model.items() if key != "compile_config"}
    for where, node in _objects(walked, "model"):
        class_name = node.get("class_name")
        if not isinstance(class_name, str) or class_name in DATA_CLASS_NAMES:
            continue
        label = _layer_label(where, node)
        module = node.get("module")
        if module is not None and not (
            isinstance(module, str)
            and any(module == root or module.startswith(f"{root}.") for root in modules)
        ):
            raise ForbiddenModel(
                f"{label} names module {module!r}; only Keras' own classes can be built here. "
                "Remove the custom class or replace it with built-in Keras layers.",
                path=where,
            )
        registered = node.get("registered_name")
        if registered not in (None, class_name) and not str(registered).startswith("keras"):
            raise ForbiddenModel(
                f"{label} is a registered custom object ({registered!r}); custom objects cannot "
                "be built on the server. Use built-in Keras layers only.",
                path=where,
            )
        if class_name in CODE_CLASS_NAMES:
            raise ForbiddenModel(
                f"{label} holds serialized Python code ({class_name!r}); the server never "
                "runs code from a model. Use built-in activations, losses and layers by name.",
                path=where,
            )
        if class_name in DENIED_LAYERS:
            raise ForbiddenModel(
                f"{label} is a {class_name} layer, which is not allowed because "
                f"{DENIED_LAYERS[class_name]}. Replace it with built-in Keras layers.",
                path=where,
                layer_class=class_name,
            )
        check_sized(class_name, node.get("config"), label, where, settings)
        if class_name in layers_allowed:
            layer_count += 1
            config = node.get("config")
            for argument in PATH_ARGUMENTS.get(class_name, ()):
                if isinstance(config, dict) and isinstance(config.get(argument), str):
                    raise ForbiddenModel(
                        f"{label} gives `{argument}` as a string, which Keras reads as a file "
                        "path on the server. Give the vocabulary inline as a list instead.",
                        path=where,
                    )
        elif class_name not in objects_allowed:
            raise ForbiddenModel(
                f"{label} has class {class_name!r}, which is not a built-in Keras layer, "
                "initializer, regularizer, constraint or dtype policy allowed on this server.",
                path=where,
                layer_class=class_name,
            )
    if layer_count > settings.max_layers:
        raise LimitExceeded(
            f"The model has {layer_count} layers, over the limit of {settings.max_layers} "
            "(REMOTEFIT_MAX_LAYERS).",
            figure=layer_count,
            limit=settings.max_layers,
        )
