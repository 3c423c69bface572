"""Data references of a job → arrays lined up with the model's inputs and outputs.

A reference (``x``, ``y`` or ``sample_weight`` of a split) is one of:

- with a dataset: an array name, ``{"columns": [...]}`` (1-D arrays such as CSV columns
  stacked into one 2-D array), a list of those (one per input/output, in the model's order), or
  an object keyed by input/output layer name;
- without a dataset: the array inline as (nested) JSON lists, or, for a model of several
  inputs/outputs, an object keyed by input/output layer name.

The same alignment serves the API (shapes only, from the dataset catalogue) and the worker
(the arrays themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from models.errors import DatasetMismatch

Leaf = Any  # an array name, {"columns": [...]}, or inline nested lists
T = TypeVar("T")
NUMERIC_KINDS = "biuf"


def is_columns(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"columns"}


def _is_name_leaf(value: Any) -> bool:
    if is_columns(value):
        columns = value["columns"]
        return (
            isinstance(columns, list) and bool(columns) and all(isinstance(c, str) for c in columns)
        )
    return isinstance(value, str)


def _not_names(where: str, ref: Any) -> DatasetMismatch:
    return DatasetMismatch(
        f"`{where}` must name arrays of the dataset (a name, a list of names, or an object "
        'keyed by layer name whose values are names or {"columns": [names]}). Received: '
        f"{_preview(ref)}.",
        received=_preview(ref),
    )


def align(ref: Any, names: list[str], where: str, inline: bool, shared: bool = False) -> list[Leaf]:
    """Split a reference into one leaf per model input (or output), in the model's order.

    With ``shared`` (``sample_weight``), one array given for a model of several outputs
    weighs every output, as Keras applies it.

    Raises:
        DatasetMismatch: the reference does not fit the model's inputs/outputs.
    """
    count = len(names)
    one_array = _is_name_leaf(ref) if not inline else not isinstance(ref, dict)
    if shared and count > 1 and one_array:
        if inline and (isinstance(ref, str) or is_columns(ref)):
            return align(ref, names, where, inline)  # the error that says what is missing
        return [ref] * count
    plural = f"{count} {'inputs' if where.endswith('.x') else 'outputs'} ({names})"
    if isinstance(ref, dict) and not is_columns(ref):
        missing = [name for name in names if name not in ref]
        unknown = sorted(set(ref) - set(names))
        if missing or unknown:
            raise DatasetMismatch(
                f"`{where}` is keyed by layer name, but its keys do not match the model's "
                f"{plural}: missing {missing}, unknown {unknown}. Key it by exactly those names."
            )
        leaves = [ref[name] for name in names]
        if not inline and not all(_is_name_leaf(leaf) for leaf in leaves):
            raise _not_names(where, ref)
        return leaves
    if inline:
        if isinstance(ref, str) or is_columns(ref):
            raise DatasetMismatch(
                f"`{where}` names an array ({ref!r}) but the split has no `dataset`. Add "
                '`"dataset": "<dataset id>"` to the split, or give the array inline.'
            )
        if count > 1:
            raise DatasetMismatch(
                f"The model has {plural}; inline arrays for several inputs or outputs must be "
                f"an object keyed by layer name, e.g. {{{names[0]!r}: [[...]], ...}}."
            )
        return [ref]
    if _is_name_leaf(ref):
        if count > 1:
            raise DatasetMismatch(
                f"`{where}` names one array but the model has {plural}. Give a list of array "
                "names in the model's order, or an object keyed by layer name."
            )
        return [ref]
    if isinstance(ref, list) and ref and all(_is_name_leaf(item) for item in ref):
        if len(ref) != count:
            raise DatasetMismatch(
                f"`{where}` lists {len(ref)} arrays but the model has {plural}. Give one "
                "array name per input/output, in the model's order."
            )
        return list(ref)
    raise _not_names(where, ref)


def _preview(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inline_array(value: Any, where: str) -> np.ndarray:
    """An inline JSON array as numpy, numeric and rectangular, or DatasetMismatch."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise DatasetMismatch(
            f"`{where}` is not a rectangular array: every row must have the same length ({error})."
        ) from None
    if array.dtype.kind not in NUMERIC_KINDS or array.ndim == 0:
        raise DatasetMismatch(
            f"`{where}` must be a (nested) list of numbers, one entry per sample. "
            f"Received: {_preview(value)}."
        )
    if array.dtype.kind == "f" and array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


def leaf_shape(
    leaf: Leaf, where: str, dataset_shapes: Mapping[str, tuple[int, ...]] | None
) -> tuple[int, ...]:
    """Shape of one leaf: from the dataset catalogue, or from the inline array."""
    if dataset_shapes is None:
        return tuple(inline_array(leaf, where).shape)
    if is_columns(leaf):
        columns = leaf["columns"]
        if not isinstance(columns, list) or not columns:
            raise DatasetMismatch(f"`{where}.columns` must be a non-empty list of array names.")
        shapes = [leaf_shape(name, where, dataset_shapes) for name in columns]
        if any(len(shape) != 1 for shape in shapes) or len({s[0] for s in shapes}) != 1:
            raise DatasetMismatch(
                f"`{where}.columns` stacks 1-D arrays of equal length; received shapes "
                f"{dict(zip(columns, shapes, strict=True))}."
            )
        return (shapes[0][0], len(columns))
    if not isinstance(leaf, str):
        raise _not_names(where, leaf)
    if leaf not in dataset_shapes:
        raise DatasetMismatch(
            f"`{where}` names array {leaf!r}, which the dataset does not have. "
            f"Arrays in it: {sorted(dataset_shapes)[:50]}.",
            received=leaf,
        )
    shape = dataset_shapes[leaf]
    if not shape:
        raise DatasetMismatch(
            f"`{where}` names array {leaf!r}, a single number (shape []); Keras needs one entry "
            "per sample, so at least one axis. Name an array of samples instead.",
            received=leaf,
        )
    return shape


def load_leaf(leaf: Leaf, where: str, get: Callable[[str], np.ndarray] | None) -> np.ndarray:
    """The array of one leaf: read through ``get`` (dataset) or converted inline."""
    if get is None:
        return inline_array(leaf, where)
    if is_columns(leaf):
        return np.stack([np.asarray(get(name)) for name in leaf["columns"]], axis=1)
    return get(leaf)


def unwrap(values: list[T]) -> T | list[T]:
    """What Keras takes: the array itself for a single input/output, else the list."""
    return values[0] if len(values) == 1 else values
