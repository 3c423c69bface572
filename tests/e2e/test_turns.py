"""Two real workers: a free worker takes the next job while another is busy (fair turns), and
``GET /v1/workers`` shows which is which, on what devices, until one stops heartbeating."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import seed_job, small_npz, upload, wait_for_job
from tests.services import CLI, Service, distributed, drop_postgres_database, kill_group

LEASE = 15.0


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A short lease, so that a killed worker drops out of GET /v1/workers within the test.
    service, database = distributed(
        tmp_path_factory.mktemp("turns"), "turns", REMOTEFIT_LEASE_SECONDS=str(LEASE)
    )
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


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_npz(tmp_path_factory.mktemp("turns-data") / "tiny.npz")


def test_the_free_worker_takes_the_next_job_within_5_s(
    two_workers: Service, tiny_npz: Path
) -> None:
    with two_workers.client() as client:
        dataset = upload(client, tiny_npz)["id"]
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


def _workers(client: httpx.Client, wanted: Callable[[list[Any]], bool], within: float) -> list[Any]:
    deadline = time.monotonic() + within
    while True:
        found: list[Any] = client.get("/v1/workers").json()["items"]
        if wanted(found):
            return found
        assert time.monotonic() < deadline, f"GET /v1/workers never as wanted: {found}"
        time.sleep(0.3)


def test_workers_show_which_is_busy_with_what_on_which_devices(
    two_workers: Service, tiny_npz: Path
) -> None:
    with two_workers.client() as client:
        found = _workers(client, lambda ws: len(ws) == 2 and all(w["devices"] for w in ws), 120)
        for worker in found:
            assert worker["devices"][0]["kind"] == "CPU" and worker["slots"] == 1
            assert worker["name"].startswith("remotefit@") and worker["last_heartbeat"]
        done_before = {w["id"]: w["jobs_done"] for w in found}
        dataset = upload(client, tiny_npz)["id"]
        busy = client.post("/v1/jobs", json=seed_job(dataset, epochs=100_000)).json()["id"]
        assert _running(client, busy, 30)["status"] == "running"
        found = _workers(client, lambda ws: any(w["job"] == busy for w in ws), 30)
        [working] = [w for w in found if w["state"] == "busy"]
        [idle] = [w for w in found if w["state"] == "idle"]
        assert working["job"] == busy and working["jobs"] == [busy] and idle["job"] is None
        ran_on = client.get(f"/v1/jobs/{busy}").json()["ran_on"]
        assert ran_on == {
            "worker": working["id"],
            "name": working["name"],
            "devices": working["devices"],
        }
        shown = subprocess.run(
            [*CLI, "workers", "--url", two_workers.url], capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert any(busy in line and "busy" in line for line in lines), shown.stdout
        assert any("idle" in line and "CPU" in line for line in lines), shown.stdout
        page = client.get("/workers").text  # the dashboard's page, for admins
        assert "1 free, 1 busy" in page and f'href="/jobs/{busy}"' in page
        assert "Ran on" in client.get(f"/jobs/{busy}").text

        client.post(f"/v1/jobs/{busy}/cancel")
        assert wait_for_job(client, busy)["status"] == "cancelled"
        found = _workers(client, lambda ws: all(w["state"] == "idle" for w in ws), 30)
        done = {w["id"]: w["jobs_done"] for w in found}
        assert done[working["id"]] == done_before[working["id"]] + 1
        assert done[idle["id"]] == done_before[idle["id"]]


def _token(service: Service, *args: str) -> str:
    env = {**os.environ, **service.env}
    made = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=True)
    return made.stdout.strip().splitlines()[-1]


def test_workers_are_for_admins_once_there_are_users(two_workers: Service) -> None:
    admin = _token(two_workers, "users", "add", "wadmin", "--admin")
    user = _token(two_workers, "users", "add", "wuser")
    for secret, status in ((user, 403), (admin, 200)):
        headers = {"Authorization": f"Bearer {secret}"}
        answer = httpx.get(f"{two_workers.url}/v1/workers", headers=headers)
        assert answer.status_code == status, answer.text
    page = httpx.get(f"{two_workers.url}/workers", cookies={"remotefit_token": user})
    assert page.status_code == 403 and "for admins" in page.text
    assert "<h1>For admins</h1>" in page.text  # not "Not found": the page exists
    assert 'href="/workers"' not in page.text  # nor in the user's menu
    headers = {"Authorization": f"Bearer {admin}"}
    assert len(httpx.get(f"{two_workers.url}/v1/workers", headers=headers).json()["items"]) == 2


def test_a_worker_that_stops_heartbeating_drops_out(two_workers: Service) -> None:
    """Last in this module: it kills a worker."""
    admin = _token(two_workers, "users", "add", "wkeeper", "--admin")
    with two_workers.client() as client:
        client.headers["Authorization"] = f"Bearer {admin}"
        before = _workers(client, lambda ws: len(ws) == 2, 30)
        killed = two_workers.processes[2]  # the second `remotefit worker`, and its pool
        kill_group(killed.pid)
        killed.wait(timeout=30)
        after = _workers(client, lambda ws: len(ws) == 1, LEASE + 30)
        assert after[0]["id"] in {w["id"] for w in before}
        assert not after[0]["id"].endswith(f":{killed.pid}")
