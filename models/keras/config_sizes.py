"""Keras objects whose config sizes an allocation, and how many values each would allocate.

A metric's threshold or class count and a lookup layer's token count are plain integers in a
config, but Keras allocates tables of their size when it builds the object: ``AUC`` four
``(num_thresholds, num_labels)`` accumulators, ``MeanIoU`` a ``num_classes``² confusion matrix,
``IntegerLookup`` / ``StringLookup`` / ``TextVectorization`` vocabularies and IDF weights (while
the model is checked, under the build lock). ``AUC(num_thresholds=10**9)`` would take ~50 GB
before any other limit applied. Each is counted here from its config alone, before anything is
built, and held to ``REMOTEFIT_MAX_CONFIG_VALUES``; the sum also counts in the training-memory
estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.errors import LimitExceeded
from models.settings import Settings


def _count(value: Any, default: int = 0) -> int:
    """An integer argument, or the length of a list one (a vocabulary, bin boundaries)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    if isinstance(value, list | tuple):
        return len(value)
    return default


def _arguments(*names: str, defaults: dict[str, int] | None = None) -> Callable[..., int]:
    """The sum of the named arguments' counts."""

    def values(config: dict[str, Any]) -> int:
        return sum(_count(config.get(name), (defaults or {}).get(name, 0)) for name in names)

    return values


def _thresholds(config: dict[str, Any]) -> int:
    # True/false positives/negatives: four accumulators of num_thresholds by num_labels.
    labels = _count(config.get("num_labels"), 1) or 1
    return 4 * _count(config.get("num_thresholds"), 200) * labels


def _confusion_matrix(config: dict[str, Any]) -> int:
    classes = _count(config.get("num_classes"))
    return classes * classes


LOOKUP = _arguments("max_tokens", "vocabulary", "idf_weights", "num_oov_indices")
SIZED: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], int]]] = {
    "AUC": (("num_thresholds", "num_labels"), _thresholds),
    "PrecisionAtRecall": (("num_thresholds",), _thresholds),
    "RecallAtPrecision": (("num_thresholds",), _thresholds),
    "SensitivityAtSpecificity": (("num_thresholds",), _thresholds),
    "SpecificityAtSensitivity": (("num_thresholds",), _thresholds),
    "IoU": (("num_classes",), _confusion_matrix),
    "MeanIoU": (("num_classes",), _confusion_matrix),
    "OneHotIoU": (("num_classes",), _confusion_matrix),
    "OneHotMeanIoU": (("num_classes",), _confusion_matrix),
    "IntegerLookup": (("max_tokens", "vocabulary", "num_oov_indices"), LOOKUP),
    "StringLookup": (("max_tokens", "vocabulary", "num_oov_indices"), LOOKUP),
    "TextVectorization": (("max_tokens", "vocabulary", "idf_weights"), LOOKUP),
    "CategoryEncoding": (("num_tokens",), _arguments("num_tokens")),
    "Hashing": (("num_bins",), _arguments("num_bins")),
    "HashedCrossing": (("num_bins",), _arguments("num_bins")),
    "Discretization": (("num_bins", "bin_boundaries"), _arguments("num_bins", "bin_boundaries")),
}


def sized_values(class_name: str, config: Any) -> int:
    """Values that an object of ``class_name`` with ``config`` allocates by its config (0 if
    its class is not one whose config sizes memory)."""
    if class_name not in SIZED or not isinstance(config, dict):
        return 0
    return SIZED[class_name][1](config)


def check_sized(class_name: str, config: Any, label: str, where: str, settings: Settings) -> None:
    """Refuse an object whose config would allocate more than ``settings.max_config_values``.

    Raises:
        LimitExceeded: naming the object, the arguments and their values, and the limit.
    """
    values = sized_values(class_name, config)
    limit = settings.max_config_values
    if values <= limit:
        return
    arguments = SIZED[class_name][0]
    given = {
        name: (f"<{len(value)} items>" if isinstance(value, list | tuple) else value)
        for name in arguments
        if (value := config.get(name)) is not None
    }
    received = ", ".join(f"{name}={value}" for name, value in given.items())
    if class_name not in label:
        label = f"{class_name} at {label}"
    raise LimitExceeded(
        f"{label} would allocate {values:,} values for its tables, over this server's limit of "
        f"{limit:,} per object (REMOTEFIT_MAX_CONFIG_VALUES). Lower {' or '.join(arguments)}. "
        f"Received: {received}.",
        path=where,
        figure=values,
        limit=limit,
    )


def total_sized_values(value: Any) -> int:
    """The values every sized object anywhere in the JSON ``value`` allocates."""
    total = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            total += sized_values(str(node.get("class_name")), node.get("config"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return total
