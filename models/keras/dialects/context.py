"""What every converter of a dialect carries: the dialect, its warnings, nested-model conversion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Context:
    """The dialect being converted, the warnings so far, and how to convert a nested model."""

    dialect: str
    convert_model: Callable[[dict[str, Any], Context, str], dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass(frozen=True)
class ShapeHint:
    """The input shape a Keras 2 layer config carried, for the InputLayer Keras 3 needs."""

    argument: str
    batch_shape: list[int | None]
    dtype: str | None
