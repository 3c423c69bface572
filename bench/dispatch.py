"""dispatch_ms, submit_per_s and inspect_ms: how fast the API takes and hands out work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from celery import Celery

from bench.common import Timer, median, percentile, wait_final
from tests.conftest import seed_model

TINY = {
    "compile": {"loss": "binary_crossentropy", "optimizer": "rmsprop"},
    "data": {"train": {"x": [[0.1] * 20, [0.2] * 20], "y": [[0], [1]]}},
    "fit": {"epochs": 1, "batch_size": 2},
}


def dispatch_ms(client: httpx.Client, count: int) -> dict[str, float]:
    """Submit → the worker has claimed the job and starts training, for an idle worker."""
    spec = {"model": seed_model().to_json(), **TINY}
    delays = []
    for _ in range(count):
        response = client.post("/v1/jobs", json=spec)
        response.raise_for_status()
        job = wait_final(client, response.json()["id"], poll=0.005)
        delays.append(job["timings"]["queued_s"] * 1000)
    return {"p50": percentile(delays, 50), "p99": percentile(delays, 99)}


@contextmanager
def consumers_paused(broker_url: str, queue: str) -> Iterator[None]:
    """The workers of ``queue`` take no job meanwhile (Celery's ``cancel_consumer``)."""
    control = Celery(broker=broker_url).control
    control.cancel_consumer(queue, reply=True, timeout=5)
    try:
        yield
    finally:
        control.add_consumer(queue, reply=True, timeout=5)


def submit_per_s(client: httpx.Client, dataset: str, count: int) -> float:
    """Sequential submissions of the seed model (with validation) per second; then cancelled.

    Run it with the workers paused (``consumers_paused``): on a two-core machine the worker
    training the first submissions took the CPU the API validates the next ones with, and
    the figure measured training (47 to 81 per second, as the machine allowed).
    """
    spec: dict[str, Any] = {
        "model": seed_model().to_json(),
        "compile": {"loss": "binary_crossentropy", "optimizer": "rmsprop", "metrics": ["accuracy"]},
        "data": {
            "train": {"dataset": dataset, "x": "x_train", "y": "y_train"},
            "validation": {"dataset": dataset, "x": "x_test", "y": "y_test"},
            "test": {"dataset": dataset, "x": "x_test", "y": "y_test"},
        },
        "fit": {"epochs": 20, "batch_size": 128},
    }
    ids = []
    with Timer() as timer:
        for _ in range(count):
            response = client.post("/v1/jobs", json=spec)
            response.raise_for_status()
            ids.append(response.json()["id"])
    for job_id in ids:
        client.post(f"/v1/jobs/{job_id}/cancel")
    return count / timer.seconds


def inspect_ms(client: httpx.Client, count: int) -> float:
    body = {"model": seed_model().to_json()}
    client.post("/v1/models/inspect", json=body).raise_for_status()
    times = []
    for _ in range(count):
        with Timer() as timer:
            client.post("/v1/models/inspect", json=body).raise_for_status()
        times.append(timer.seconds * 1000)
    return median(times)
