"""An estimate of a job's training memory, from a model built without its weights.

Weights, their gradients and two optimizer slots (Adam's) take four copies of the parameters;
each layer's output is kept for the backward pass and its gradient flows back through it, two
copies per sample of the batch. The estimate is rough by design: it exists to turn a job that
could never fit into a clear 422 before any memory is taken, not to plan a GPU to the byte.
"""

from __future__ import annotations

import math
from typing import Any

from models.errors import LimitExceeded
from models.settings import Settings

BYTES_PER_VALUE = 4  # float32
PARAMETER_COPIES = 4  # weights, gradients, two optimizer slots
ACTIVATION_COPIES = 2  # forward output and its gradient


def _output_values(layer: Any) -> int:
    try:
        outputs = layer.output
    except (AttributeError, ValueError):
        return 0
    total = 0
    for tensor in outputs if isinstance(outputs, list | tuple) else [outputs]:
        dims = [d for d in tuple(tensor.shape)[1:] if d is not None]
        total += math.prod(dims) if dims else 1
    return total


def training_bytes(model: Any, batch_size: int, table_values: int = 0) -> int:
    """Estimated bytes to train ``model`` (built, weights not needed) at ``batch_size``.

    ``table_values`` counts what metrics and lookup layers allocate by their configs
    (``models.keras.config_sizes.total_sized_values``), which are not parameters.
    """
    parameters = int(model.count_params())
    activations = sum(_output_values(layer) for layer in model.layers)
    return BYTES_PER_VALUE * (
        PARAMETER_COPIES * parameters + ACTIVATION_COPIES * batch_size * activations + table_values
    )


def check_training_memory(
    model: Any, batch_size: int, settings: Settings, table_values: int = 0
) -> int:
    """The estimate, or LimitExceeded when it is over ``settings.max_training_bytes``."""
    estimate = training_bytes(model, batch_size, table_values)
    if estimate > settings.max_training_bytes:
        raise LimitExceeded(
            f"Training this model at batch_size={batch_size} needs about "
            f"{estimate / 2**30:.1f} GiB (weights, gradients, optimizer state, activations and "
            "metric/lookup tables), "
            f"over this server's limit of {settings.max_training_bytes / 2**30:.1f} GiB "
            "(REMOTEFIT_MAX_TRAINING_BYTES). Use a smaller batch_size or model.",
            figure=estimate,
            limit=settings.max_training_bytes,
        )
    return estimate
