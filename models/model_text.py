"""The model as a string: ``model.to_json()``, or the YAML of Keras 2's ``to_yaml()``, parsed
as plain data before anything else reads it."""

from __future__ import annotations

import json
from typing import Any

import yaml

from models.errors import InvalidModel

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _KerasYamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """Plain YAML data, plus the two data-only tags that Keras 2's ``to_yaml()`` wrote."""


# `yaml.dump` of a Keras 2 config tags every tuple (kernel sizes, shapes) and, on Python 2,
# every name; both are plain lists and strings. Every other tag stays an error.
_KerasYamlLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node)
)
_KerasYamlLoader.add_constructor(
    "tag:yaml.org,2002:python/unicode", lambda loader, node: loader.construct_scalar(node)
)


def parse_model_text(text: str) -> dict[str, Any]:
    """The model in a string: ``model.to_json()``, or the YAML of Keras 2's ``to_yaml()``.

    The YAML is read with a safe loader: plain data only, never a Python object.

    Raises:
        InvalidModel: the string is neither, holds a YAML tag, or is not an object.
        RecursionError: it is nested deeper than a parser can go.
    """
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        parsed = _parse_yaml(text, error)
    if not isinstance(parsed, dict):
        raise InvalidModel(
            "`model` must be a JSON object such as model.to_json() writes, "
            f'{{"class_name": ..., "config": ...}}. Received: {type(parsed).__name__}.'
        )
    return parsed


def _parse_yaml(text: str, json_error: json.JSONDecodeError) -> Any:
    not_json = (
        "`model` is a string but not JSON, nor the YAML of Keras 2's to_yaml(); send "
        "`model.to_json()` as it is, or its parsed object. JSON error: "
        f"{json_error.msg} at line {json_error.lineno}, column {json_error.colno}."
    )
    try:
        loaded = yaml.load(text, Loader=_KerasYamlLoader)  # a SafeLoader: plain data only
    except yaml.constructor.ConstructorError as error:
        raise InvalidModel(
            f"`model` is YAML with a tag the server does not read ({error.problem}); a model "
            "YAML may hold plain data only, as Keras 2's to_yaml() wrote it."
        ) from None
    except yaml.YAMLError:
        raise InvalidModel(not_json) from None
    if not isinstance(loaded, dict):
        raise InvalidModel(not_json)
    _bound_aliases(loaded, limit=2 * len(text) + 1000)
    try:
        # Anchors and aliases share objects; the JSON round trip makes a plain tree of them.
        tree: dict[str, Any] = json.loads(json.dumps(loaded, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidModel(
            f"`model` is YAML with values JSON cannot hold ({error}); a model YAML holds "
            "strings, numbers, booleans, null, lists and mappings only."
        ) from None
    return tree


def _bound_aliases(value: Any, limit: int) -> None:
    """Refuse YAML whose aliases expand far beyond its text (a "billion laughs")."""
    stack, count = [value], 0
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            raise InvalidModel(
                "`model` is YAML whose anchors and aliases expand to more values than its text "
                f"holds (over {limit}); Keras' to_yaml() never writes that."
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
