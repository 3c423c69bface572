"""How many training steps run per call into TensorFlow, when the job leaves it to the worker.

For the small and mid-sized models people send, a step's time is mostly the Python and dispatch
overhead of one call (about a millisecond on a CPU), not arithmetic; Keras' cure,
``compile(steps_per_execution=N)``, runs N steps per call and is off by default. The worker
picks N from an estimate of one step's arithmetic: as many steps as fill ``CHUNK_SECONDS``, so
that the per-call overhead is a small share of the chunk while progress still arrives several
times a second and a cancel (read between chunks) still stops the job well within a second;
never more steps than an epoch has. The same batches run in the same order, with the same
number of optimizer updates: only how many of them share a call changes.
"""

from __future__ import annotations

import math
import time
from functools import cache
from typing import Any

CHUNK_SECONDS = 0.1
"""The time one call should take: the overhead of a call (~1 ms) is then ~1 % of it (a conv
net's ~25 ms steps still share calls), and progress and cancel still land ten times a second."""
LOOP_STEP_SECONDS = 0.0004
"""What a step costs inside a multi-step call beyond its arithmetic (iterator, loop, metrics);
measured on this kind of CPU for the seed model (0.57 ms per step at N = 32, ~0.2 of it math)."""
MAX_STEPS = 1000
"""Above this, a call's length is all arithmetic: nothing more to gain, only latency to lose."""
RECURRENT = ("RNN", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D")


def choose_steps_per_execution(model: Any, batch_size: int, steps_per_epoch: int | None) -> int:
    """The number of steps per call for training ``model`` at ``batch_size``.

    Args:
        model: a built Keras model (weights are not read).
        batch_size: rows per step.
        steps_per_epoch: steps in one epoch, when known (it bounds the choice).

    Returns:
        An integer from 1 to ``min(steps_per_epoch, MAX_STEPS)``.
    """
    flops = 3 * forward_flops_per_sample(model) * batch_size  # backward ≈ twice the forward
    step = LOOP_STEP_SECONDS + flops / device_flops_per_second()
    steps = max(1, int(CHUNK_SECONDS / step))
    if steps_per_epoch:
        steps = min(steps, steps_per_epoch)
    return min(steps, MAX_STEPS)


def forward_flops_per_sample(model: Any) -> float:
    """Twice the multiply-adds of one sample's forward pass, from the layers' weights and shapes.

    A layer with weights applies each weight once per position of its output (a Dense once, a
    Conv2D once per pixel of its output map, a recurrent layer once per time step); a layer
    without weights costs about one operation per value it outputs.
    """
    total = 0.0
    for layer in _leaf_layers(model):
        weights = int(layer.count_params()) if layer.built else 0
        if weights:
            total += 2.0 * weights * _positions(layer)
        else:
            total += _output_values(layer)
    return total


@cache
def device_flops_per_second() -> float:
    """Float32 matrix throughput of the device TensorFlow places work on, measured once."""
    import tensorflow as tf

    size, repeats = 256, 16
    a = tf.random.uniform((size, size))

    @tf.function
    def work(x: Any) -> Any:
        for _ in range(repeats):
            x = tf.linalg.matmul(x, a) * 0.01
        return x

    work(a).numpy()  # trace and warm
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        work(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * repeats / max(best, 1e-9)


def _leaf_layers(model: Any) -> list[Any]:
    """Every layer that does work: nested models and wrappers are opened, InputLayers skipped."""
    found = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ in RECURRENT or not getattr(layer, "layers", None):
            if type(layer).__name__ != "InputLayer":
                found.append(layer)
        else:
            found.extend(_leaf_layers(layer))
    return found


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(d for d in tuple(tensor.shape)[1:] if d is not None)


def _tensors(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _output_values(layer: Any) -> int:
    try:
        return sum(math.prod(_shape(t)) for t in _tensors(layer.output))
    except (AttributeError, ValueError):
        return 0


def _positions(layer: Any) -> int:
    """How many times a layer applies its weights to one sample."""
    try:
        if type(layer).__name__ in RECURRENT:
            shape = _shape(_tensors(layer.input)[0])
            return shape[0] if shape else 1  # time steps
        shape = _shape(_tensors(layer.output)[0])
    except (AttributeError, ValueError, IndexError):
        return 1
    return math.prod(shape[:-1]) if len(shape) > 1 else 1
