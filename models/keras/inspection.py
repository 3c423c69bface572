"""What ``POST /v1/models/inspect`` tells about a model JSON, built without allocating it."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from models.keras.dialects.convert import Normalized, normalize
from models.keras.model import describe, model_key, signature
from models.settings import Settings


def _count(weights: list[Any]) -> int:
    total = 0
    for weight in weights:
        size = 1
        for dim in weight.shape:
            size *= int(dim)
        total += size
    return total


def _output_shape(layer: Any) -> Any:
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(output, list | tuple):
        return [list(o.shape) for o in output]
    return list(output.shape)


_inspected: OrderedDict[str, dict[str, Any]] = OrderedDict()
_inspected_lock = threading.Lock()
INSPECTED_CACHE_SIZE = 64


def inspect_model(model_json: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Layers, inputs/outputs, parameter counts, ``summary()`` text and normalised JSON.

    Also the Keras dialect the JSON was written in (keras3, tf.keras2, keras2.2, keras2.0) and
    the warnings of its conversion to Keras 3. Fast enough for every keystroke of a form: the
    answer for a model JSON is kept.

    Raises:
        InvalidModel, ForbiddenModel, LimitExceeded: as for a job's model.
    """
    key = model_key(model_json)
    model = describe(model_json, settings, key)  # checks and limits, even for a kept answer
    with _inspected_lock:
        if key in _inspected:
            _inspected.move_to_end(key)
            return _inspected[key]
    answer = _inspect(model, normalize(model_json))  # describe() has checked that it converts
    with _inspected_lock:
        _inspected[key] = answer
        while len(_inspected) > INSPECTED_CACHE_SIZE:
            _inspected.popitem(last=False)
    return answer


def _inspect(model: Any, normalized: Normalized) -> dict[str, Any]:
    sig = signature(model)
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    trainable = _count(model.trainable_weights)
    total = _count(model.weights)
    return {
        "name": model.name,
        "class_name": type(model).__name__,
        "dialect": normalized.dialect,
        "layers": [
            {
                "name": layer.name,
                "class_name": type(layer).__name__,
                "output_shape": _output_shape(layer),
                "params": _count(layer.weights),
                "trainable": layer.trainable,
            }
            for layer in model.layers
        ],
        "inputs": [t.as_dict() for t in sig.inputs],
        "outputs": [t.as_dict() for t in sig.outputs],
        "params": {"total": total, "trainable": trainable, "non_trainable": total - trainable},
        "summary": "\n".join(lines),
        "config": model.get_config(),
        "model_json": json.loads(model.to_json()),
        "warnings": list(normalized.warnings),
    }
