"""A Keras 2 functional model's graph (``Model`` / ``Functional``) in the Keras 3 form.

Keras 3 still reads the Keras 2 list form of a layer's inbound nodes,
``[[["layer", node_index, tensor_index, {kwargs}], ...]]``, so nodes keep that form, except:

- Keras 2 counted a nested model's own construction as its node 0, and Keras 3 does not, so a
  reference to a nested model's output moves down by one.
- Keras 2 wrote a tensor passed as a keyword (``MultiHeadAttention(query, value)``) as a bare
  ``["value", 0, 0]`` that Keras 3 would pass on as a list; such nodes take Keras 3's form, with
  ``__keras_tensor__`` references that Keras 3 resolves to the real tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.errors import InvalidModel
from models.keras.dialects.context import Context, ShapeHint
from models.keras.dialects.layers import MODEL_CLASSES

ConvertEntry = Callable[[Any, Context, str], tuple[dict[str, Any], ShapeHint | None]]


def convert_functional(
    config: dict[str, Any], context: Context, path: str, convert_entry: ConvertEntry
) -> dict[str, Any]:
    """A functional model's config, its layers converted by ``convert_entry``.

    Raises:
        InvalidModel: a layer, node or tensor reference is malformed.
    """
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise InvalidModel(f"`{path}.layers` must be the list of the model's layers.")
    names = [_layer_name(entry, f"{path}.layers[{index}]") for index, entry in enumerate(layers)]
    skipped = {
        name: kind
        for name, entry in zip(names, layers, strict=True)
        if (kind := _own_first_node(entry, context.dialect))
    }
    converted = []
    for index, (name, entry) in enumerate(zip(names, layers, strict=True)):
        where = f"{path}.layers[{index}]"
        layer, hint = convert_entry(entry, context, where)
        if hint is not None:
            context.warn(
                f"layer {name!r} ({layer['class_name']}) at {where}: `{hint.argument}` was "
                "dropped; in a functional model the InputLayers give the input shapes."
            )
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise InvalidModel(f"`{where}.inbound_nodes` must be a list of the layer's calls.")
        refs = _References(set(names), skipped, f"{where}.inbound_nodes")
        layer = {**layer, "name": name, "inbound_nodes": [refs.node(node) for node in nodes]}
        converted.append(layer)
    # Keras 3 itself moves output references to a nested *Functional* down by one; a nested
    # Sequential's it does not.
    sequentials = {name: kind for name, kind in skipped.items() if kind == "Sequential"}
    functional: dict[str, Any] = {"name": config.get("name", "model")}
    if isinstance(config.get("trainable"), bool):
        functional["trainable"] = config["trainable"]
    functional["layers"] = converted
    for key in ("input_layers", "output_layers"):
        refs = _References(set(names), sequentials, f"{path}.{key}")
        functional[key] = refs.endpoints(config.get(key))
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": functional,
        "registered_name": "Functional",
    }


def _layer_name(entry: Any, path: str) -> str:
    config = entry.get("config") if isinstance(entry, dict) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    if name is None and isinstance(config, dict):
        name = config.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidModel(f"The layer at {path} needs a `name` (a non-empty string).")
    return name


def _own_first_node(entry: Any, dialect: str) -> str | None:
    """The class of a nested model whose node 0 is its own construction in Keras 2."""
    class_name = entry.get("class_name") if isinstance(entry, dict) else None
    if class_name not in MODEL_CLASSES:
        return None
    if class_name != "Sequential" or dialect != "tf.keras2":
        return str(class_name)
    # tf.keras skips that node only for a Sequential model built with an input shape.
    config = entry.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config
    first = layers[0] if isinstance(layers, list) and layers else None
    first_config = first.get("config") if isinstance(first, dict) else None
    has_input = isinstance(first, dict) and (
        first.get("class_name") == "InputLayer"
        or (isinstance(first_config, dict) and "batch_input_shape" in first_config)
    )
    return "Sequential" if has_input else None


class _References:
    """Reads ``[layer, node_index, tensor_index]`` references within one model."""

    def __init__(self, names: set[str], shifted: dict[str, str], path: str) -> None:
        self.names, self.shifted, self.path = names, shifted, path

    def tensor(self, value: Any, where: str) -> list[Any]:
        if not (
            isinstance(value, list)
            and len(value) in (3, 4)
            and isinstance(value[0], str)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in value[1:3])
        ):
            raise InvalidModel(
                f"`{where}` must be a tensor reference [layer_name, node_index, tensor_index]. "
                f"Received: {value!r:.80}."
            )
        name, node_index, tensor_index = value[:3]
        if name not in self.names:
            raise InvalidModel(f"`{where}` refers to layer {name!r}, which the model lacks.")
        if name in self.shifted:
            node_index -= 1
        if node_index < 0 or tensor_index < 0:
            raise InvalidModel(
                f"`{where}` refers to call {value[1]} of {name!r}, which does not exist."
            )
        return [name, node_index, tensor_index]

    def is_tensor(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and len(value) == 3
            and value[0] in self.names
            and all(isinstance(i, int) and not isinstance(i, bool) for i in value[1:])
        )

    def node(self, node: Any) -> Any:
        """One call of a layer, in the list form (or Keras 3's form, kept as it is)."""
        where = f"{self.path}[...]"
        if isinstance(node, dict) and "args" in node:
            return node  # already Keras 3's form
        if not isinstance(node, list):
            raise InvalidModel(
                f"`{where}` must be a list of [layer_name, node_index, tensor_index, kwargs] "
                f"(Keras 2) or {{args, kwargs}} (Keras 3). Received: {type(node).__name__}."
            )
        inputs, kwargs = [], {}
        for index, item in enumerate(node):
            inputs.append(self.tensor(item, f"{where}[{index}]"))
            if len(item) == 4:
                if not isinstance(item[3], dict):
                    raise InvalidModel(f"`{where}[{index}][3]` must be an object of call kwargs.")
                kwargs = item[3]
        if not self._holds_tensor(kwargs):
            return [[*tensor, kwargs] for tensor in inputs]
        args = [_keras_tensor(t) for t in inputs]
        return {"args": [args[0] if len(args) == 1 else args], "kwargs": self._revive(kwargs)}

    def _holds_tensor(self, value: Any) -> bool:
        if self.is_tensor(value):
            return True
        if isinstance(value, dict):
            return any(self._holds_tensor(v) for v in value.values())
        return isinstance(value, list) and any(self._holds_tensor(v) for v in value)

    def _revive(self, value: Any) -> Any:
        if self.is_tensor(value):
            return _keras_tensor(self.tensor(value, f"{self.path} kwargs"))
        if isinstance(value, dict):
            return {key: self._revive(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._revive(item) for item in value]
        return value

    def endpoints(self, value: Any, top: bool = True) -> Any:
        """``input_layers`` / ``output_layers``: one reference, or a list or dict of them."""
        if isinstance(value, list) and value and isinstance(value[0], str):
            return self.tensor(value, self.path)
        if isinstance(value, list) and len(value) == 1 and top:
            # Keras 2 wrote a single input or output as a list of one and read it back as the
            # bare tensor (`model.output`); in Keras 3 a list of one stays a list.
            return self.endpoints(value[0], top=False)
        if isinstance(value, list) and value:
            return [self.endpoints(item, top=False) for item in value]
        if isinstance(value, dict) and value:
            return {key: self.endpoints(item, top=False) for key, item in value.items()}
        raise InvalidModel(
            f"`{self.path}` must list the model's input or output tensors as "
            f"[layer_name, node_index, tensor_index]. Received: {value!r:.80}."
        )


def _keras_tensor(reference: list[Any]) -> dict[str, Any]:
    # Keras 3 replaces this placeholder with the output of the layer named in keras_history;
    # its shape and dtype are never used.
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [], "dtype": "float32", "keras_history": reference},
    }
