"""Time per training step in the worker ÷ a direct ``model.fit``, and how fast a cancel lands.

``step_ratio`` runs both sides with the same settings (one step per call into TensorFlow);
``step_ratio_auto`` and ``step_ratio_conv`` let the worker choose ``steps_per_execution`` and
hold it against a direct fit with Keras' defaults, as a user's own script runs it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import median, percentile, run_job, seed_model, upload_arrays
from bench.direct import SEED_COMPILE, DirectProcess
from remotefit.http import parse_sse
from tests.services import Service


@dataclass(frozen=True)
class Workload:
    """A model, how it is compiled, its data and its batch size."""

    name: str
    model_json: str
    compile: dict[str, Any]
    arrays: dict[str, np.ndarray]
    batch_size: int = 128

    @property
    def steps(self) -> int:
        return -(-len(self.arrays["x_train"]) // self.batch_size)

    def job(self, dataset: str, epochs: int, **compile_args: Any) -> dict[str, Any]:
        return {
            "name": f"bench-{self.name}",
            "model": self.model_json,
            "compile": {**self.compile, **compile_args},
            "data": {
                "train": {"dataset": dataset, "x": "x_train", "y": "y_train"},
                "test": {"dataset": dataset, "x": "x_test", "y": "y_test"},
            },
            "fit": {"epochs": epochs, "batch_size": self.batch_size},
        }


def seed_workload(rows: int) -> Workload:
    """The seed example's model on ``rows`` rows of 20 features, batch 128."""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.random((rows, 20)),
        "y_train": rng.integers(2, size=(rows, 1)),
        "x_test": rng.random((100, 20)),
        "y_test": rng.integers(2, size=(100, 1)),
    }
    return Workload("seed", seed_model().to_json(), SEED_COMPILE, arrays)


def conv_workload(rows: int) -> Workload:
    """The keras.io MNIST convnet's layers on ``rows`` random 28x28x1 images, batch 128."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(2)
    labels = np.eye(10, dtype=np.float32)
    arrays = {
        "x_train": rng.random((rows, 28, 28, 1), dtype=np.float32),
        "y_train": labels[rng.integers(10, size=rows)],
        "x_test": rng.random((100, 28, 28, 1), dtype=np.float32),
        "y_test": labels[rng.integers(10, size=100)],
    }
    compile_args = {
        "loss": "categorical_crossentropy",
        "optimizer": "adam",
        "metrics": ["accuracy"],
    }
    return Workload("conv", model.to_json(), compile_args, arrays)


def epoch_seconds(client: httpx.Client, job_id: str) -> list[float]:
    """Each epoch's wall time in the worker, from the job's (finished) event stream."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events", params={"after": 0}) as stream:
        stream.raise_for_status()
        events = list(parse_sse(stream.iter_lines()))
    return [float(event.data["seconds"]) for event in events if event.type == "epoch"]


def step_ratio(
    service: Service,
    folder: Path,
    workload: Workload,
    epochs: int,
    rounds: int,
    **served_compile: Any,
) -> dict[str, Any]:
    """Steady-state seconds per step in the worker ÷ under a direct fit (same model and data).

    Each side's figure for one job is the median wall time of its epochs after the first
    (which traces the model): the worker's own, reported with each epoch, against the same
    clock around a direct ``model.fit`` in a process of its own (``bench.direct``), compiled
    with Keras' defaults. ``served_compile`` adds to the served job's ``compile`` (e.g.
    ``steps_per_execution=1``, the direct side's setting). Each round restarts the service, so
    that its jobs run in a fresh worker process, starts a fresh direct process, warms both
    with one job, then runs served, direct, direct, served, so that a machine slowing down or
    speeding up through the round weighs on both sides alike; the figure is the median of the
    rounds' ratios.

    Why fresh processes each round: a process's speed on this machine is a matter of luck
    that lasts its whole life (see ``bench.direct``); with one process a side, that luck was a
    bias of several per cent. Why the median epoch: about one epoch in ten, on either side,
    stalls for ~0.5 s with both cores idle (seen in a plain ``model.fit`` with no service
    running), and one stall more or less on one side moved a round's ratio by 10 %.
    """
    arrays = workload.arrays
    with service.client() as client:
        dataset = upload_arrays(client, folder, f"steps-{workload.name}", **arrays)

    def per_step(seconds: list[float]) -> float:
        return median(seconds[1:]) / workload.steps

    chosen: set[int] = set()

    def served(client: httpx.Client, epochs: int = epochs) -> float:
        spec = workload.job(dataset, epochs, **served_compile)
        job: dict[str, Any] = run_job(client, spec)[1]
        chosen.add(int(job["progress"].get("steps_per_execution") or 1))
        return per_step(epoch_seconds(client, job["id"]))

    ratios, served_s, direct_s = [], [], []
    for _ in range(rounds):
        x, y = arrays["x_train"], arrays["y_train"]
        model_json = json.dumps(json.loads(workload.model_json))
        with DirectProcess(x, y, model_json, workload.compile, workload.batch_size) as direct:
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
        "steps_per_epoch": workload.steps,
        "steps_per_execution": sorted(chosen),
    }


def cancel_latency(client: httpx.Client, folder: Path, rows: int, cancels: int) -> dict[str, Any]:
    """Seconds from ``POST /cancel`` of a training job to its final ``cancelled`` status.

    Each job trains the seed model on ``rows`` rows with the worker's choice of
    ``steps_per_execution``; the cancel is sent once it reports a batch, and the job is
    polled every 10 ms until it ends (its last whole epoch's weights saved).
    """
    workload = seed_workload(rows)
    dataset = upload_arrays(client, folder, "cancel", **workload.arrays)
    latencies, chosen = [], set()
    for _ in range(cancels):
        job_id = client.post("/v1/jobs", json=workload.job(dataset, 1000)).json()["id"]
        while not (job := client.get(f"/v1/jobs/{job_id}").json())["progress"].get("step"):
            if job["status"] not in ("queued", "running"):
                raise RuntimeError(f"benchmark job {job_id} ended {job['status']} before a batch")
            time.sleep(0.01)
        chosen.add(job["progress"]["steps_per_execution"])
        start = time.perf_counter()
        client.post(f"/v1/jobs/{job_id}/cancel").raise_for_status()
        while client.get(f"/v1/jobs/{job_id}").json()["status"] == "running":
            time.sleep(0.01)
        latencies.append(time.perf_counter() - start)
    return {
        "p95": percentile(latencies, 95),
        "p50": percentile(latencies, 50),
        "steps_per_execution": sorted(chosen),
    }
