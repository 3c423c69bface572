"""Does the worker's choice of ``steps_per_execution`` pick well? ms per step at N = 1, 8, auto.

``python -m bench.steps_choice`` fits small dense, convolutional and recurrent models at two
batch sizes in this process, each N on a fresh model after a warm-up fit, and prints one line
per case: the estimate, the N chosen, and the measured ms per step and per call for each N.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from models.keras.execution import (
    LOOP_STEP_SECONDS,
    choose_steps_per_execution,
    device_flops_per_second,
    forward_flops_per_sample,
)

Case = Callable[[], tuple[Any, np.ndarray, np.ndarray, str]]


def dense() -> tuple[Any, np.ndarray, np.ndarray, str]:
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((20,)),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    rng = np.random.default_rng(0)
    return model, rng.random((16000, 20)), rng.integers(2, size=(16000, 1)), "binary_crossentropy"


def conv() -> tuple[Any, np.ndarray, np.ndarray, str]:
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(0)
    y = np.eye(10, dtype=np.float32)[rng.integers(10, size=2560)]
    return model, rng.random((2560, 28, 28, 1), dtype=np.float32), y, "categorical_crossentropy"


def recurrent() -> tuple[Any, np.ndarray, np.ndarray, str]:
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((40,)),
            layers.Embedding(1000, 32),
            layers.LSTM(32),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    rng = np.random.default_rng(0)
    return model, rng.integers(1000, size=(3200, 40)), rng.integers(2, size=(3200, 1)), "mse"


def ms_per_step(case: Case, batch: int, steps_per_execution: int) -> float:
    model, x, y, loss = case()
    model.compile(optimizer="rmsprop", loss=loss, steps_per_execution=steps_per_execution)
    warm = batch * steps_per_execution * 2
    model.fit(x[:warm], y[:warm], batch_size=batch, epochs=1, verbose=0)
    steps = -(-len(x) // batch)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
    return (time.perf_counter() - start) / (2 * steps) * 1000


def main() -> None:
    print(f"device: {device_flops_per_second() / 1e9:.0f} GFLOP/s (float32 matmul)")
    for name, case in (("dense", dense), ("conv", conv), ("recurrent", recurrent)):
        for batch in (32, 128):
            model, x, _, _ = case()
            auto = choose_steps_per_execution(model, batch, -(-len(x) // batch))
            flops = 3 * forward_flops_per_sample(model) * batch
            estimate = (LOOP_STEP_SECONDS + flops / device_flops_per_second()) * 1000
            row = [f"{name} batch {batch}: estimate {estimate:.2f} ms/step, auto N={auto}"]
            for n in sorted({1, 8, auto}):
                ms = ms_per_step(case, batch, n)
                row.append(f"N={n}: {ms:.2f} ms/step ({ms * n:.0f} ms/call)")
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
