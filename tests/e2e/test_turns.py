"""Fair turns with real workers: a free worker takes the next job while another is busy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import seed_job, upload, wait_for_job
from tests.services import CLI, Service, distributed, drop_postgres_database


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service, database = distributed(tmp_path_factory.mktemp("turns"), "turns")
    service.commands.append([*CLI, "worker"])
    service.start()
    import psycopg

    deadline = time.monotonic() + 120
    with psycopg.connect(service.env["REMOTEFIT_DATABASE_URL"], autocommit=True) as connection:
        while connection.execute("SELECT sum(slots) FROM worker_slots").fetchone() != (2,):
            assert time.monotonic() < deadline, "the two workers never reported their slots"
            time.sleep(0.5)
    yield service
    service.stop()
    drop_postgres_database(database)


def _running(client: httpx.Client, job_id: str, within: float) -> dict[str, object]:
    deadline = time.monotonic() + within
    job: dict[str, object] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] != "queued":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still queued after {within} s: {job}")


def test_the_free_worker_takes_the_next_job_within_5_s(
    two_workers: Service, tmp_path: Path
) -> None:
    path = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.random((64, 20)),
        y_train=rng.integers(2, size=(64, 1)),
        x_test=rng.random((16, 20)),
        y_test=rng.integers(2, size=(16, 1)),
    )
    with two_workers.client() as client:
        dataset = upload(client, path)["id"]
        warm = client.post("/v1/jobs", json=seed_job(dataset, epochs=1)).json()
        assert wait_for_job(client, warm["id"])["status"] == "succeeded"
        busy = client.post("/v1/jobs", json=seed_job(dataset, epochs=100_000)).json()
        first = _running(client, busy["id"], 30)
        assert first["status"] == "running"
        submitted = time.monotonic()
        quick = client.post("/v1/jobs", json=seed_job(dataset, epochs=1)).json()
        second = _running(client, quick["id"], 5)
        assert time.monotonic() - submitted <= 5
        assert second["worker"] != client.get(f"/v1/jobs/{busy['id']}").json()["worker"]
        client.post(f"/v1/jobs/{busy['id']}/cancel")
        assert wait_for_job(client, quick["id"])["status"] == "succeeded"
        assert wait_for_job(client, busy["id"])["status"] == "cancelled"
