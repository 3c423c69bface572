"""One job on several devices (``remotefit worker --gpus``), run here on two logical CPUs.

``REMOTEFIT_CPU_DEVICES=2`` splits the CPU into two devices and ``REMOTEFIT_DISTRIBUTE=true``
(what ``--gpus 0,1`` sets) trains each job under MirroredStrategy over them, so the strategy's
code really runs: the same job gives the weights of one device, and survives a kill.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import upload, wait_for_job
from tests.e2e.test_faults import (
    FAST,
    check_succeeded,
    dataset_for,
    epochs_done,
    kill_tree,
    log_text,
    pid_of,
    submit,
    write_long_npz,
)
from tests.services import Service, distributed, drop_postgres_database, embedded

TWO_DEVICES = {"REMOTEFIT_CPU_DEVICES": "2", "REMOTEFIT_DISTRIBUTE": "true", **FAST}


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def two_devices(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp(f"two-devices-{request.param}")
    database = None
    if request.param == "embedded":
        service = embedded(folder, "two-devices", **TWO_DEVICES)
    else:
        service, database = distributed(folder, "two-devices", **TWO_DEVICES)
    service.start()
    yield service
    service.stop()
    if database:
        drop_postgres_database(database)


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data and starting weights, the same for both sides."""
    import keras

    rng = np.random.default_rng(3)
    x = rng.random((512, 6), dtype=np.float32)
    y = (x.sum(axis=1, keepdims=True) > 3).astype(np.float32)
    folder = tmp_path_factory.mktemp("devices-data")
    np.savez(folder / "data.npz", x=x, y=y)
    keras.utils.set_random_seed(0)
    _model().save_weights(folder / "start.weights.h5")
    return {"data": folder / "data.npz", "weights": folder / "start.weights.h5"}


def _model() -> Any:
    import keras

    return keras.Sequential(
        [
            keras.Input((6,), name="x"),
            keras.layers.Dense(16, activation="tanh", name="hidden"),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )


def _trained_weights(client: httpx.Client, files: dict[str, Path]) -> list[np.ndarray]:
    data, weights = upload(client, files["data"])["id"], upload(client, files["weights"])["id"]
    spec = {
        "model": _model().to_json(),
        "compile": {
            "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.5}},
            "loss": "binary_crossentropy",
        },
        "initial_weights": {"dataset": weights},
        "data": {"train": {"dataset": data, "x": "x", "y": "y"}},
        "fit": {"epochs": 3, "batch_size": 64, "shuffle": False},
    }
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    body = client.get(f"/v1/jobs/{job['id']}/weights", params={"format": "json"}).json()
    return [np.asarray(array) for array in body["weights"]]


def test_two_devices_train_as_one(
    two_devices: Service, embedded_service: Service, start: dict[str, Path]
) -> None:
    with two_devices.client() as client:
        split = _trained_weights(client, start)
    with embedded_service.client() as client:
        single = _trained_weights(client, start)
    assert "on /job:localhost/replica:0/task:0/device:CPU:0, " in log_text(two_devices)
    for mine, theirs in zip(split, single, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    assert not np.allclose(split[0], np.asarray(_start_kernel(start)))  # it did train


def _start_kernel(start: dict[str, Path]) -> Any:
    model = _model()
    model.load_weights(start["weights"])
    return model.get_weights()[0]


def test_a_killed_two_device_job_resumes(two_devices: Service, tmp_path: Path) -> None:
    long_npz = write_long_npz(tmp_path / "long.npz")
    with two_devices.client() as client:
        job_id = submit(client, dataset_for(two_devices, client, long_npz), epochs=6)
        running = epochs_done(two_devices, job_id, 2, timeout=180)
        kill_tree(pid_of(running.worker))
        job = wait_for_job(client, job_id, timeout=300)
        check_succeeded(two_devices, client, job, attempts=2, epochs=6)
