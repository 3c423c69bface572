"""The sweep request of ``POST /v1/sweeps``: a whole job spec and the values in it to search.

Pydantic checks the form (types, ranges, unknown keys); ``models.sweeps.checks`` checks the
content (every target resolves, every value fits, the corners of the space are valid jobs).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.spec import JobCreate

MAX_PARAMETERS = 32
MAX_CHOICES = 64
MAX_TRIALS = 10_000
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntRange(Strict):
    """Whole numbers from ``low`` to ``high`` (both included), on a log scale or by ``step``."""

    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self


class FloatRange(Strict):
    """Real numbers from ``low`` to ``high``, on a log scale or by ``step`` (not both)."""

    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(
                f"`low` and `high` must be finite numbers. Received: low={self.low}, "
                f"high={self.high}."
            )
        _check_range(self.low, self.high, self.log, self.step)
        return self


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(
            f"`low` must not be above `high`. Received: low={low}, high={high}. Swap them."
        )
    if log and low <= 0:
        raise ValueError(
            f"A `log` range needs `low` > 0 (a logarithm of {low} is undefined). Received: "
            f"low={low}. Give a positive low, or drop `log`."
        )
    if log and step is not None:
        raise ValueError(
            f"A range is either on a `log` scale or by `step`, not both (Optuna's rule). "
            f"Received: log=true, step={step}."
        )


class Parameter(Strict):
    """One value to search: where it goes in ``base``, and the values it may take."""

    target: str | None = Field(default=None, description="A JSON Pointer into `base`.")
    targets: list[str] | None = Field(
        default=None, min_length=1, max_length=32, description="Several, set to one value."
    )
    int: IntRange | None = None
    float: FloatRange | None = None
    categorical: list[Any] | None = Field(default=None, min_length=1, max_length=MAX_CHOICES)

    @model_validator(mode="after")
    def _one_target_one_kind(self) -> Parameter:
        if (self.target is None) == (self.targets is None):
            raise ValueError(
                "Give exactly one of `target` (a JSON Pointer into `base`, e.g. "
                '"/fit/batch_size") or `targets` (a list of them, set to the same value).'
            )
        kinds = [k for k in ("int", "float", "categorical") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "Give exactly one of `int` or `float` ({low, high, log, step}) or "
                f"`categorical` (a list of values). Received: {kinds or 'none'}."
            )
        return self

    @property
    def pointers(self) -> list[str]:
        return [self.target] if self.target is not None else list(self.targets or [])

    @property
    def kind(self) -> str:
        return next(k for k in ("int", "float", "categorical") if getattr(self, k) is not None)


class Objective(Strict):
    metric: str = Field(
        min_length=1, max_length=128, description="A key of Keras' History, e.g. `val_loss`."
    )
    direction: Literal["minimize", "maximize"] = "minimize"


class Sampler(Strict):
    type: Literal["random", "grid", "tpe"] = "tpe"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class Pruner(Strict):
    type: Literal["none", "median", "asha"] = "none"
    min_epochs: int = Field(default=1, ge=1, description="Epochs every trial trains at least.")
    reduction_factor: int = Field(default=3, ge=2, le=100, description="ASHA's eta.")


class Budget(Strict):
    max_trials: int = Field(default=10, ge=1, le=MAX_TRIALS)
    max_concurrent_trials: int = Field(default=1, ge=1, le=1000)


class SweepCreate(Strict):
    """The request of ``POST /v1/sweeps``."""

    name: str | None = Field(default=None, max_length=255)
    base: JobCreate
    parameters: dict[str, Parameter] = Field(min_length=1, max_length=MAX_PARAMETERS)
    objective: Objective
    sampler: Sampler = Field(default_factory=Sampler)
    pruner: Pruner = Field(default_factory=Pruner)
    budget: Budget = Field(default_factory=Budget)

    @model_validator(mode="after")
    def _parameter_names(self) -> SweepCreate:
        import re

        for name in self.parameters:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(
                    "A parameter's name is 1-64 letters, digits, `_`, `.` or `-`, starting with "
                    f"a letter or `_`. Received: {name[:80]!r}."
                )
        return self
