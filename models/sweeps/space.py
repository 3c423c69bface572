"""Where a sweep's values go: JSON Pointers into the base job, ``@name`` list picks, types.

A pointer is RFC 6901 (``/fit/batch_size``, ``~1`` for ``/``, ``~0`` for ``~``) with one addition:
a token ``@name`` picks the element of a list whose ``config.name`` (or ``name``) is ``name``, so
``/model/config/layers/@hidden/config/units`` finds the layer named ``hidden`` in Sequential and
functional JSON alike, wherever it stands in the list.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

from models.errors import InvalidSpec
from models.sweeps.spec import Parameter, SweepCreate

FORBIDDEN_KEYS = ("class_name", "module", "registered_name")
"""Keys that choose what Keras imports and builds: never a sweep's to set."""
MAX_GRID = 100_000


class InvalidParameter(InvalidSpec):
    """A sweep parameter that cannot be searched as given; names the parameter."""

    code = "invalid_parameter"


def tokens(pointer: str) -> list[str]:
    """The unescaped tokens of a JSON Pointer (``""`` is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON Pointer starts with `/`; received {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _named(items: list[Any], name: str) -> int | None:
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        config = item.get("config")
        if (isinstance(config, Mapping) and config.get("name") == name) or item.get("name") == name:
            return index
    return None


def _step(container: Any, token: str, walked: str) -> tuple[Any, str | int]:
    """The key or index ``token`` picks in ``container``, or ValueError saying why not."""
    if isinstance(container, Mapping):
        if token not in container:
            keys = sorted(map(str, container))[:20]
            raise ValueError(f"`{walked}` has no key {token!r} (its keys: {keys})")
        return container, token
    if isinstance(container, list):
        if token.startswith("@"):
            index = _named(container, token[1:])
            if index is None:
                names = [
                    (item.get("config") or {}).get("name") or item.get("name")
                    for item in container
                    if isinstance(item, Mapping)
                ][:30]
                raise ValueError(
                    f"no element of the list at `{walked}` is named {token[1:]!r} (by "
                    f"`config.name` or `name`; the names there: {names})"
                )
            return container, index
        if not token.isdigit() or int(token) >= len(container):
            raise ValueError(
                f"`{walked}` is a list of {len(container)}; {token!r} is neither an index "
                "below that nor `@name`"
            )
        return container, int(token)
    raise ValueError(f"`{walked}` is a {type(container).__name__}, not an object or a list")


def locate(document: Any, pointer: str) -> tuple[Any, str | int]:
    """The container and key that ``pointer`` names in ``document``.

    Raises:
        ValueError: the pointer does not resolve (the message says where it stops).
    """
    parts = tokens(pointer)
    if not parts:
        raise ValueError("the pointer names the whole base; point at one value inside it")
    node: Any = document
    walked = ""
    for part in parts[:-1]:
        container, key = _step(node, part, walked or "/")
        node = container[key]
        walked += "/" + part
    return _step(node, parts[-1], walked or "/")


def resolve(document: Any, pointer: str) -> Any:
    container, key = locate(document, pointer)
    return container[key]


def forbidden_key(value: Any) -> str | None:
    """The first of ``FORBIDDEN_KEYS`` anywhere inside ``value``, if any."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in FORBIDDEN_KEYS:
                return str(key)
            found = forbidden_key(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = forbidden_key(item)
            if found:
                return found
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def check_targets(sweep: SweepCreate, base: dict[str, Any]) -> None:
    """Every target resolves, touches no ``class_name``/``module``/``registered_name``, and
    every value the parameter may take has the type of the value it replaces.

    Raises:
        InvalidParameter: naming the parameter, the target, and what to change.
    """
    seen: dict[str, str] = {}
    for name, parameter in sweep.parameters.items():
        where = f"`parameters.{name}`"
        for pointer in parameter.pointers:
            try:
                parts = tokens(pointer)
            except ValueError as error:
                raise InvalidParameter(f"{where}: {error}.", parameter=name) from None
            bad = next((part for part in parts if part in FORBIDDEN_KEYS), None)
            if bad is not None:
                raise InvalidParameter(
                    f"{where}: the target {pointer!r} touches `{bad}`, which chooses the code "
                    "Keras imports; a sweep may change a layer's settings, never what it is. "
                    "Point at a value inside `config` instead.",
                    parameter=name,
                    target=pointer,
                )
            if not parts or parts[0] not in ("model", "compile", "fit", "evaluate", "data"):
                raise InvalidParameter(
                    f"{where}: the target {pointer!r} must start with /model, /compile, /fit, "
                    "/evaluate or /data.",
                    parameter=name,
                    target=pointer,
                )
            try:
                old = resolve(base, pointer)
            except ValueError as error:
                raise InvalidParameter(
                    f"{where}: the target {pointer!r} does not resolve in `base`: {error}. "
                    "Check the path against the job spec (`@name` picks a layer by its name).",
                    parameter=name,
                    target=pointer,
                ) from None
            if pointer in seen:
                raise InvalidParameter(
                    f"{where}: the target {pointer!r} is also set by `parameters."
                    f"{seen[pointer]}`; each value in `base` can be searched by one parameter.",
                    parameter=name,
                    target=pointer,
                )
            seen[pointer] = name
            _check_values(name, parameter, pointer, old)


def _check_values(name: str, parameter: Parameter, pointer: str, old: Any) -> None:
    where = f"`parameters.{name}`"
    if parameter.int is not None and _kind(old) != "integer":
        raise InvalidParameter(
            f"{where}: an `int` parameter replaces {_kind(old)} {old!r} at {pointer!r}; it "
            f"may only replace an integer. Use {_suggest(old)}.",
            parameter=name,
            target=pointer,
        )
    if parameter.float is not None and _kind(old) != "number":
        raise InvalidParameter(
            f"{where}: a `float` parameter replaces {_kind(old)} {old!r} at {pointer!r}; it "
            f"may only replace a real number (a float). Use {_suggest(old)}.",
            parameter=name,
            target=pointer,
        )
    for choice in parameter.categorical or []:
        bad = forbidden_key(choice)
        if bad is not None:
            raise InvalidParameter(
                f"{where}: the choice {_short(choice)} holds a `{bad}` key: a sweep may not "
                "choose which Keras class is built (a Lambda could come in that way). Search "
                "the values inside its config instead.",
                parameter=name,
                target=pointer,
            )
        if not _same_type(choice, old):
            raise InvalidParameter(
                f"{where}: the choice {_short(choice)} ({_kind(choice)}) would replace "
                f"{_kind(old)} {_short(old)} at {pointer!r}; every choice must have the type "
                "of the value it replaces.",
                parameter=name,
                target=pointer,
            )


def _same_type(new: Any, old: Any) -> bool:
    kind_new, kind_old = _kind(new), _kind(old)
    return kind_new == kind_old or (kind_new == "integer" and kind_old == "number")


def _suggest(old: Any) -> str:
    kind = _kind(old)
    if kind == "number":
        return "`float`"
    if kind == "integer":
        return "`int`"
    return "`categorical` with values of that type"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def apply(base: dict[str, Any], sweep: SweepCreate, params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with each parameter of ``params`` set at its targets."""
    spec = copy.deepcopy(base)
    for name, value in params.items():
        for pointer in sweep.parameters[name].pointers:
            container, key = locate(spec, pointer)
            container[key] = copy.deepcopy(value)
    if any(p.startswith("/model/") for name in params for p in sweep.parameters[name].pointers):
        _drop_build_configs(spec["model"].get("config"))
    return spec


def _drop_build_configs(node: Any) -> None:
    """Forget the input shapes each layer recorded (``build_config``): a wider layer changes
    the next one's, and Keras finds them again by calling the layers on the model's inputs."""
    if isinstance(node, Mapping):
        if isinstance(node, dict):
            node.pop("build_config", None)
        for item in node.values():
            _drop_build_configs(item)
    elif isinstance(node, list):
        for item in node:
            _drop_build_configs(item)


def _ends(parameter: Parameter) -> tuple[Any, Any]:
    if parameter.int is not None:
        ints = parameter.int
        return ints.low, ints.low + (ints.high - ints.low) // ints.step * ints.step
    if parameter.float is not None:
        floats = parameter.float
        if floats.step is None:
            return floats.low, floats.high
        count = math.floor((floats.high - floats.low) / floats.step + 1e-9)
        return floats.low, round(floats.low + count * floats.step, 12)
    choices = parameter.categorical or []
    return choices[0], choices[-1]


def corners(sweep: SweepCreate) -> Iterator[tuple[str, dict[str, Any]]]:
    """The points of the space checked before a sweep runs: all lows, all highs, and each
    categorical choice (the other parameters at their lows), each with a description."""
    lows = {name: _ends(p)[0] for name, p in sweep.parameters.items()}
    highs = {name: _ends(p)[1] for name, p in sweep.parameters.items()}
    yield "all parameters at their lows", lows
    yield "all parameters at their highs", highs
    for name, parameter in sweep.parameters.items():
        for index, choice in enumerate(parameter.categorical or []):
            if 0 < index < len(parameter.categorical or []) - 1:
                yield f"`{name}` at choice {index} ({_short(choice)})", {**lows, name: choice}


def grid_values(name: str, parameter: Parameter) -> list[Any]:
    """Every value a parameter takes on a grid.

    Raises:
        InvalidParameter: a continuous range without a ``step``.
    """
    if parameter.categorical is not None:
        return list(parameter.categorical)
    if parameter.int is not None:
        return list(range(parameter.int.low, parameter.int.high + 1, parameter.int.step))
    assert parameter.float is not None
    if parameter.float.step is None:
        raise InvalidParameter(
            f"`parameters.{name}`: the `grid` sampler needs a `step` for a `float` range (or "
            "`categorical` values): a continuous range has no grid. Add a step, or use the "
            "`random` or `tpe` sampler.",
            parameter=name,
        )
    low, step = parameter.float.low, parameter.float.step
    count = math.floor((parameter.float.high - low) / step + 1e-9) + 1
    return [round(low + index * step, 12) for index in range(count)]


def _grid_count(name: str, parameter: Parameter) -> int:
    """How many values a parameter takes on a grid, counted without listing them."""
    if parameter.int is not None:
        return (parameter.int.high - parameter.int.low) // parameter.int.step + 1
    if parameter.float is not None and parameter.float.step is not None:
        floats = parameter.float
        assert floats.step is not None
        return math.floor((floats.high - floats.low) / floats.step + 1e-9) + 1
    return len(grid_values(name, parameter))  # categorical; or the refusal of a stepless float


def grid(sweep: SweepCreate) -> dict[str, list[Any]]:
    """The grid's values by parameter; refused when it has more than ``MAX_GRID`` points."""
    counts = {name: _grid_count(name, p) for name, p in sweep.parameters.items()}
    size = math.prod(counts.values())
    if size > MAX_GRID:
        raise InvalidParameter(
            f"The grid has {size} points, over the limit of {MAX_GRID}. Use larger steps, fewer "
            "choices, or the `random` or `tpe` sampler.",
            parameter=max(counts, key=lambda name: counts[name]),
        )
    return {name: grid_values(name, p) for name, p in sweep.parameters.items()}


def grid_size(sweep: SweepCreate) -> int:
    return math.prod(len(v) for v in grid(sweep).values())
