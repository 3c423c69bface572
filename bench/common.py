"""What every benchmark shares: the seed example, services, timing helpers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.conftest import seed_arrays, seed_job, seed_model
from tests.services import Service

__all__ = ["Timer", "percentile", "run_job", "seed_arrays", "seed_job", "seed_model"]


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def wait_final(client: httpx.Client, job_id: str, poll: float = 0.01) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            if job["status"] != "succeeded":
                raise RuntimeError(f"benchmark job {job_id} ended {job['status']}: {job['error']}")
            return job
        time.sleep(poll)


def follow_events(client: httpx.Client, job_id: str) -> None:
    """Read the job's event stream to its end, as the Python client's ``Job.wait()`` does."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=None) as stream:
        stream.raise_for_status()
        for _ in stream.iter_raw():
            pass


def run_job(client: httpx.Client, spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Submit, wait for success (as a client sees it) and download the weights; seconds taken.

    The wait follows the job's event stream, as the Python client does: it ends the moment
    the job does, and costs the machine nothing meanwhile. (Polling every 10 ms instead took
    0.8 CPU-seconds from a 2.7 s job on two cores, API and client together.)
    """
    with Timer() as timer:
        response = client.post("/v1/jobs", json=spec)
        response.raise_for_status()
        job_id = response.json()["id"]
        follow_events(client, job_id)
        job = wait_final(client, job_id)
        client.get(f"/v1/jobs/{job_id}/weights").raise_for_status()
    return timer.seconds, job


def upload_arrays(client: httpx.Client, folder: Path, name: str, **arrays: np.ndarray) -> str:
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with open(path, "rb") as handle:
        response = client.post("/v1/datasets", files={"file": (path.name, handle)})
    response.raise_for_status()
    return str(response.json()["id"])


def best_of(repeats: int, measure: Callable[[], float]) -> float:
    """The least of several runs: the figure least disturbed by the machine's other work."""
    return min(measure() for _ in range(repeats))


def started(service: Service) -> Service:
    service.start()
    return service
