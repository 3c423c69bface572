"""Model JSON typed by hand: Keras' own classes by bare ``class_name``, layers without names.

Keras 3's ``model_from_json`` locates a class by its ``module`` (``Could not locate class
'Sequential'`` without it), and a curl user writes ``{"class_name": "Dense", "config": {...}}``
as Keras' own documentation spells a layer. Nothing is ambiguous there: each bare class name
is looked up among Keras' own classes of the kind its place holds (a layer in ``layers``, an
initializer under ``*_initializer``, ...), given the module Keras 3 writes, and each unnamed
layer of a list gets the name Keras would generate. Unknown classes are left as they are, for
the allow-list to refuse with its message.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from models.keras.dialects.layers import keras_names

MODEL_MODULES = {
    "Sequential": ("keras", None),
    "Functional": ("keras.src.models.functional", "Functional"),
    "Model": ("keras.src.models.functional", "Functional"),
}
POLICY_CLASSES = {"DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy"}
# Where an object sits → the Keras namespaces its class may come from, in order.
SUFFIX_NAMESPACES = {
    "_initializer": "initializers",
    "_regularizer": "regularizers",
    "_constraint": "constraints",
}
LAYER_KEYS = {"layer", "cell", "forward_layer", "backward_layer"}


def fill_bare_classes(model: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The model JSON with modules for Keras' own bare classes and names for unnamed layers.

    Returns:
        The completed copy (the input is never modified) and what was filled in, in words;
        the JSON itself when nothing was missing.
    """
    classes: list[str] = []
    named: list[str] = []
    names: set[str] = set()
    _collect_names(model, names)
    completed = copy.deepcopy(model)
    _fill(completed, None, classes, named, names)
    warnings = []
    if classes:
        warnings.append(
            f"{len(classes)} classes named without `module` were read as Keras' own: "
            f"{', '.join(sorted(set(classes)))}."
        )
    if named:
        warnings.append(
            f"{len(named)} unnamed layers were given the names Keras generates: {', '.join(named)}."
        )
    return (completed, warnings) if warnings else (model, [])


def _collect_names(value: Any, names: set[str]) -> None:
    if isinstance(value, dict):
        config = value.get("config")
        if "class_name" in value and isinstance(config, dict):
            name = config.get("name")
            if isinstance(name, str):
                names.add(name)
        for child in value.values():
            _collect_names(child, names)
    elif isinstance(value, list):
        for child in value:
            _collect_names(child, names)


def _fill(
    value: Any, key: str | None, classes: list[str], named: list[str], names: set[str]
) -> None:
    if isinstance(value, list):
        for child in value:
            _fill(child, "layers" if key == "layers" else None, classes, named, names)
        return
    if not isinstance(value, dict):
        return
    class_name, config = value.get("class_name"), value.get("config")
    if isinstance(class_name, str) and isinstance(config, dict | list) and "module" not in value:
        found = _module_for(class_name, key)
        if found is not None:
            module, registered = found
            value["module"], value["registered_name"] = module, registered
            classes.append(class_name)
        named_by_keras = key == "layers" or class_name in MODEL_MODULES
        if named_by_keras and isinstance(config, dict) and not config.get("name"):
            config["name"] = _generated_name(class_name, names)
            named.append(config["name"])
    for child_key, child in value.items():
        _fill(child, child_key, classes, named, names)


def _module_for(class_name: str, key: str | None) -> tuple[str, str | None] | None:
    """The module Keras 3 writes for Keras' own class ``class_name`` found at ``key``."""
    if class_name in MODEL_MODULES and key in (None, "layers", *LAYER_KEYS):
        return MODEL_MODULES[class_name]
    if key == "dtype" and class_name in POLICY_CLASSES:
        return "keras", None
    for suffix, namespace in SUFFIX_NAMESPACES.items():
        if key is not None and key.endswith(suffix):
            return (f"keras.{namespace}", None) if class_name in keras_names(namespace) else None
    if (key is None or key == "layers" or key in LAYER_KEYS) and class_name in keras_names(
        "layers"
    ):
        return "keras.layers", None
    return None


def _generated_name(class_name: str, names: set[str]) -> str:
    """Keras' own naming: the class in snake case, then ``_1``, ``_2``... while it is taken."""
    base = re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()
    name, number = base, 0
    while name in names:
        number += 1
        name = f"{base}_{number}"
    names.add(name)
    return name
