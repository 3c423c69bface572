"""Everything checked about a sweep before anything runs, so a bad sweep creates nothing.

The base is checked as ``POST /v1/jobs`` checks a job; then every target (it resolves, it
touches no class, each value has the type it replaces), the objective (a key Keras' History
will have), and the corners of the space: all lows, all highs and each categorical choice are
each made into a job spec and checked as a job (bounds, model, data, memory estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from models.errors import InvalidSpec, ServiceError
from models.jobs.validation import Shapes, check_job, referenced_datasets
from models.settings import Settings
from models.spec import JobCreate
from models.sweeps.space import InvalidParameter, apply, check_targets, corners, grid
from models.sweeps.spec import SweepCreate

ExtraCheck = Callable[[JobCreate], None]
"""More checks of a trial's job that need the database (initial weights)."""


def metric_names(spec: JobCreate) -> set[str] | None:
    """The names Keras' History will have for a single-output model, or None when they cannot
    be told in advance (several outputs, or a serialized metric without a name)."""
    metrics = spec.compile.metrics
    names = {"loss"}
    if isinstance(metrics, dict):
        return None
    for metric in metrics or []:
        if isinstance(metric, str):
            names.add(metric)
        elif isinstance(metric, dict) and isinstance((metric.get("config") or {}).get("name"), str):
            names.add(metric["config"]["name"])
        else:
            return None
    return names


def check_objective(sweep: SweepCreate) -> None:
    """The objective is a key the trials' History will hold.

    Raises:
        InvalidSpec: naming the metric, the keys expected, and how to fix it.
    """
    base = sweep.base
    metric = sweep.objective.metric
    validated = (
        base.data.validation is not None or base.fit.validation_split > 0
    ) and base.fit.epochs > 0
    name = metric.removeprefix("val_")
    if metric.startswith("val_") and not validated:
        raise InvalidSpec(
            f"`objective.metric` is {metric!r}, but the base has no validation data, so Keras "
            "logs no `val_` metrics. Add `data.validation` or `fit.validation_split` to the "
            f"base, or use {name!r}.",
            field="objective.metric",
        )
    if base.fit.epochs == 0:
        raise InvalidSpec(
            "The base has `fit.epochs` 0: its trials would train nothing. Give it epochs.",
            field="base.fit.epochs",
        )
    names = metric_names(base)
    if names is not None and name not in names and not name.endswith("_loss"):
        logged = sorted(names | ({f"val_{n}" for n in names} if validated else set()))
        raise InvalidSpec(
            f"`objective.metric` is {metric!r}, which the trials' History will not hold; it "
            f"will have {logged}. Pick one of them, or add the metric to `base.compile.metrics`.",
            field="objective.metric",
        )


def _as_job(spec: dict[str, Any]) -> JobCreate:
    try:
        return JobCreate.model_validate(spec)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidSpec(
            f"its job spec is invalid at `{where}`: {message} (received {first.get('input')!r})."
        ) from None


def _check_point(
    sweep: SweepCreate,
    base: dict[str, Any],
    params: Mapping[str, Any],
    shapes: Mapping[str, Shapes],
    settings: Settings,
    extra: ExtraCheck,
) -> None:
    spec = _as_job(apply(base, sweep, params))
    check_job(spec, shapes, settings)
    extra(spec)


def check_sweep(
    sweep: SweepCreate,
    shapes: Mapping[str, Shapes],
    settings: Settings,
    extra: ExtraCheck = lambda _: None,
) -> dict[str, Any]:
    """Validate a sweep fully; returns its base as a job spec (what trials start from).

    Args:
        sweep: the request.
        shapes: for each dataset id the base (or any categorical choice) references, its
            arrays' shapes by name.
        settings: the server's limits.
        extra: further checks of a job spec (initial weights), run on the base and corners.

    Raises:
        InvalidSpec: the base is not a valid job, or the first parameter that is refused.
    """
    check_job(sweep.base, shapes, settings)
    extra(sweep.base)
    base = sweep.base.model_dump(mode="json")
    check_targets(sweep, base)
    check_objective(sweep)
    if sweep.sampler.type == "grid":
        grid(sweep)
    for what, params in corners(sweep):
        try:
            _check_point(sweep, base, params, shapes, settings, extra)
        except ServiceError as error:
            culprit = _culprit(sweep, base, params, shapes, settings, extra)
            shown = ", ".join(f"{name}={value!r}" for name, value in params.items())
            raise InvalidParameter(
                f"With {what} ({shown}), a trial would be refused: {error.message} Narrow "
                f"the range of `parameters.{culprit}`.",
                parameter=culprit,
                **{k: v for k, v in error.extra.items() if k not in ("parameter",)},
            ) from None
    return base


def _culprit(
    sweep: SweepCreate,
    base: dict[str, Any],
    params: Mapping[str, Any],
    shapes: Mapping[str, Shapes],
    settings: Settings,
    extra: ExtraCheck,
) -> str:
    """The parameter that fails on its own at this corner (the others as in the base); the
    first one when only their combination fails."""
    for name, value in params.items():
        try:
            _check_point(sweep, base, {name: value}, shapes, settings, extra)
        except ServiceError:
            return name
    return next(iter(params))


def referenced(sweep: SweepCreate) -> set[str]:
    """Every dataset id the base and the categorical choices may reference."""
    ids = referenced_datasets(sweep.base)
    for parameter in sweep.parameters.values():
        for choice in parameter.categorical or []:
            if isinstance(choice, str) and any(p.startswith("/data/") for p in parameter.pointers):
                ids.add(choice)
    return ids
