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
from bench.direct import DirectProcess
from remotefit.http import parse_sse
from tests.services import Service

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


def epoch_seconds(client: httpx.Client, job_id: str) -> list[float]:
    """Each epoch's wall time in the worker, from the job's (finished) event stream."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events", params={"after": 0}) as stream:
        stream.raise_for_status()
        events = list(parse_sse(stream.iter_lines()))
    return [float(event.data["seconds"]) for event in events if event.type == "epoch"]


def step_ratio(
    service: Service, folder: Path, rows: int, epochs: int, rounds: int
) -> dict[str, Any]:
    """Steady-state seconds per step in the worker ÷ under a direct fit (same model and data).

    Each side's figure for one job is the median wall time of its epochs after the first
    (which traces the model): the worker's own, reported with each epoch, against the same
    clock around a direct ``model.fit`` in a process of its own (``bench.direct``). Each round
    restarts the service, so that its jobs run in a fresh worker process, starts a fresh
    direct process, warms both with one job, then runs served, direct, direct, served, so that
    a machine slowing down or speeding up through the round weighs on both sides alike; the
    figure is the median of the rounds' ratios.

    Why fresh processes each round: a process's speed on this machine is a matter of luck
    that lasts its whole life (see ``bench.direct``); with one process a side, that luck was a
    bias of several per cent. Why not whole jobs: the difference of two jobs' times at two
    epoch counts (the first estimator) carried the noise of four jobs and everything each does
    once; it moved between 1.02 and 1.16 for the same code. Why the median epoch: about one
    epoch in ten, on either side, stalls for ~0.5 s with both cores idle (seen in a plain
    ``model.fit`` with no service running), and one stall more or less on one side moved a
    round's ratio by 10 %.
    """
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.random((rows, 20)),
        "y_train": rng.integers(2, size=(rows, 1)),
        "x_test": rng.random((100, 20)),
        "y_test": rng.integers(2, size=(100, 1)),
    }
    with service.client() as client:
        dataset = upload_arrays(client, folder, "steps", **arrays)
    steps = -(-rows // 128)

    def per_step(seconds: list[float]) -> float:
        return median(seconds[1:]) / steps

    def served(client: httpx.Client, epochs: int = epochs) -> float:
        job: dict[str, Any] = run_job(client, seed_job(dataset, epochs=epochs))[1]
        return per_step(epoch_seconds(client, job["id"]))

    ratios, served_s, direct_s = [], [], []
    for _ in range(rounds):
        with DirectProcess(arrays["x_train"], arrays["y_train"]) as direct:
            service.restart()
            with service.client() as client:
                served(client, epochs=2)  # warm: imports, first trace, connections
                direct.fit(2)
                first = served(client)
                one, other = per_step(direct.fit(epochs)), per_step(direct.fit(epochs))
                last = served(client)
        ratios.append((first + last) / (one + other))
        served_s += [first, last]
        direct_s += [one, other]
    return {
        "ratio": median(ratios),
        "ratios": [round(ratio, 3) for ratio in ratios],
        "served_ms_per_step": median(served_s) * 1000,
        "direct_ms_per_step": median(direct_s) * 1000,
        "steps_per_epoch": steps,
    }


def cold_script_seconds(folder: Path) -> float:
    """``python seed_example.py`` in a fresh process, TensorFlow import included."""
    script = folder / "seed_example.py"
    script.write_text(SEED_SCRIPT)
    with Timer() as timer:
        subprocess.run([sys.executable, str(script)], cwd=folder, check=True, capture_output=True)
    return timer.seconds
