"""overhead_s and cold_script_ratio: the seed example, served vs run directly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


def cold_script_seconds(folder: Path) -> float:
    """``python seed_example.py`` in a fresh process, TensorFlow import included."""
    script = folder / "seed_example.py"
    script.write_text(SEED_SCRIPT)
    with Timer() as timer:
        subprocess.run([sys.executable, str(script)], cwd=folder, check=True, capture_output=True)
    return timer.seconds
