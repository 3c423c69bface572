"""overhead_s, step_ratio and cold_script_ratio: the seed example, served vs run directly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import Timer, median, run_job, seed_arrays, seed_job, seed_model, upload_arrays

SEED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from keras import Sequential
    from keras.layers import Dense, Dropout
    x_train = np.random.random((1000, 20)); y_train = np.random.randint(2, size=(1000, 1))
    x_test = np.random.random((100, 20)); y_test = np.random.randint(2, size=(100, 1))
    model = Sequential()
    model.add(Dense(64, input_dim=20, activation='relu')); model.add(Dropout(0.5))
    model.add(Dense(64, activation='relu')); model.add(Dropout(0.5))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='rmsprop', metrics=['accuracy'])
    model.fit(x_train, y_train, epochs=20, batch_size=128, verbose=0)
    score = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    model.save_weights('seed.weights.h5')
    """
)


def direct_seed(arrays: dict[str, np.ndarray], epochs: int, folder: Path) -> float:
    """The seed example in this (warm) process: build, compile, fit, evaluate, save weights."""
    with Timer() as timer:
        model = seed_model()
        model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
        model.fit(arrays["x_train"], arrays["y_train"], epochs=epochs, batch_size=128, verbose=0)
        model.evaluate(arrays["x_test"], arrays["y_test"], batch_size=128, verbose=0)
        model.save_weights(folder / "direct.weights.h5")
    return timer.seconds


def overhead(client: httpx.Client, folder: Path, repeats: int) -> dict[str, float]:
    """Seconds the service adds to the seed example, as the client sees it, over direct fit.

    The two alternate, and the figure is the median of each pair's difference: on a machine
    where the same direct fit took 2.2 to 3.5 s back to back, a difference of two medians
    swung by half a second, while neighbouring runs share most of the machine's mood.
    """
    arrays = seed_arrays()
    dataset = upload_arrays(client, folder, "seed", **arrays)
    spec = seed_job(dataset)
    run_job(client, spec)  # warm the worker
    direct_seed(arrays, 20, folder)  # warm this process
    served, direct = [], []
    for _ in range(repeats):  # alternating, so that a slow spell of the machine hits both
        served.append(run_job(client, spec)[0])
        direct.append(direct_seed(arrays, 20, folder))
    return {
        "overhead_s": median([one - other for one, other in zip(served, direct, strict=True)]),
        "served_s": median(served),
        "direct_s": median(direct),
    }


def step_ratio(
    client: httpx.Client, folder: Path, rows: int, epochs: tuple[int, int], repeats: int
) -> dict[str, Any]:
    """Steady-state seconds per step in the worker ÷ under a direct fit (same model and data).

    Each side is timed at two epoch counts; the difference divided by the extra steps leaves
    out everything that happens once per job (start, tracing, evaluation, saving). The served
    time is the worker's own (``timings.running_s``). The sides alternate, and the figure is
    the median of each round's ratio: on a two-core machine a single side's seconds per step
    swung by a quarter from one round to the next (1.0 to 1.7 ms), while the two sides of a
    round share most of the machine's mood; a ratio of two medians over five rounds still
    moved between 1.02 and 1.16 from one run to the next with the same code.
    """
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.random((rows, 20)),
        "y_train": rng.integers(2, size=(rows, 1)),
        "x_test": rng.random((100, 20)),
        "y_test": rng.integers(2, size=(100, 1)),
    }
    dataset = upload_arrays(client, folder, "steps", **arrays)

    def served(count: int) -> float:
        job: dict[str, Any] = run_job(client, seed_job(dataset, epochs=count))[1]
        return float(job["timings"]["running_s"])

    def direct(count: int) -> float:
        return direct_seed(arrays, count, folder)

    served(1)
    direct(1)
    ratios = []
    for _ in range(repeats):
        long_served, long_direct = served(epochs[1]), direct(epochs[1])
        short_served, short_direct = served(epochs[0]), direct(epochs[0])
        ratios.append((long_served - short_served) / (long_direct - short_direct))
    steps = -(-rows // 128) * (epochs[1] - epochs[0])
    return {"ratio": median(ratios), "ratios": sorted(ratios), "steps": steps}


def cold_script_seconds(folder: Path) -> float:
    """``python seed_example.py`` in a fresh process, TensorFlow import included."""
    script = folder / "seed_example.py"
    script.write_text(SEED_SCRIPT)
    with Timer() as timer:
        subprocess.run([sys.executable, str(script)], cwd=folder, check=True, capture_output=True)
    return timer.seconds
