"""Shared fixtures: real services, the seed example's data and model, job helpers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.services import RUNNING, Service, distributed, drop_postgres_database, embedded

FINAL = ("succeeded", "failed", "cancelled", "pruned")


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (a CI time-out, ``kill``) ends like one stopped with Ctrl-C:
    fixtures are torn down, so the services and jobs they started stop too."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_job_outlives_its_test() -> Iterator[None]:
    """Cancel the jobs a test left queued or running, whether it passed or failed.

    The services are shared by the whole session: one test's leftover job would hold the worker
    that the tests after it wait on, and turn one failure into many.
    """
    before = {service: service.unfinished_jobs() for service in RUNNING}
    yield
    for service in list(RUNNING):
        service.cancel(service.unfinished_jobs() - before.get(service, set()))


@pytest.fixture(scope="session")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = embedded(tmp_path_factory.mktemp("embedded"))
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def distributed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service, database = distributed(tmp_path_factory.mktemp("distributed"))
    service.start()
    yield service
    service.stop()
    drop_postgres_database(database)


@pytest.fixture(params=["embedded", "distributed"])
def service(request: pytest.FixtureRequest) -> Service:
    """The same test on the embedded default and on Redis + PostgreSQL."""
    fixture: Service = request.getfixturevalue(f"{request.param}_service")
    return fixture


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as http:
        yield http


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 180) -> dict[str, Any]:
    """Poll a job until it is final; fails with the job's state on time-out."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job.get("status") in FINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not final after {timeout}s: {job}")


def upload(client: httpx.Client, path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        response = client.post("/v1/datasets", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def seed_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The seed example's data: 1000 training and 100 test samples of 20 features."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.random((1000, 20)),
        "y_train": rng.integers(2, size=(1000, 1)),
        "x_test": rng.random((100, 20)),
        "y_test": rng.integers(2, size=(100, 1)),
    }


def small_npz(path: Path) -> Path:
    """The seed example's features at 64 training and 16 test rows, saved at ``path``: for
    tests that need a job to run, not what it learns."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.random((64, 20)),
        y_train=rng.integers(2, size=(64, 1)),
        x_test=rng.random((16, 20)),
        y_test=rng.integers(2, size=(16, 1)),
    )
    return path


def _seed_sequential(k: Any) -> Any:
    """The seed example's Sequential model, exactly as its author wrote it, in Keras ``k``."""
    model = k.Sequential()
    model.add(k.layers.Dense(64, input_dim=20, activation="relu"))
    model.add(k.layers.Dropout(0.5))
    model.add(k.layers.Dense(64, activation="relu"))
    model.add(k.layers.Dropout(0.5))
    model.add(k.layers.Dense(1, activation="sigmoid"))
    return model


def seed_model() -> Any:
    """The seed example's model in Keras 3."""
    import warnings

    import keras

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # input_dim is deprecated in Keras 3, and still works
        return _seed_sequential(keras)


def tf_keras_seed_model() -> Any:
    """The seed example's model written with tf-keras (Keras 2), as most saved models were."""
    import tf_keras

    return _seed_sequential(tf_keras)


@pytest.fixture(scope="session")
def seed_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "seed.npz"
    np.savez(path, **seed_arrays())  # type: ignore[arg-type]
    return path


def seed_job(dataset_id: str, **fit: Any) -> dict[str, Any]:
    """The seed example as a job spec on an uploaded seed.npz."""
    return {
        "name": "seed-example",
        "model": seed_model().to_json(),
        "compile": {"loss": "binary_crossentropy", "optimizer": "rmsprop", "metrics": ["accuracy"]},
        "data": {
            "train": {"dataset": dataset_id, "x": "x_train", "y": "y_train"},
            "test": {"dataset": dataset_id, "x": "x_test", "y": "y_test"},
        },
        "fit": {"epochs": 20, "batch_size": 128, **fit},
        "evaluate": {"batch_size": 128},
    }
