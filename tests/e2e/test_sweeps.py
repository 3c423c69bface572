"""Sweeps end to end: real workers train each trial, ASHA prunes in the worker, faults heal.

The trials train a "counter" (one Dense unit, MAE far below its targets, plain SGD), whose loss
after an epoch falls with the learning rate alone: the weak trials are known in advance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from remotefit.http import parse_sse
from tests.conftest import upload, wait_for_job
from tests.e2e.test_faults import kill_tree, pid_of
from tests.services import Service, embedded

ROWS = 640  # 20 batches of 32: an epoch in a blink
LONG_ROWS = 20_000  # 625 batches: an epoch takes a while
SWEEP_FINAL = ("succeeded", "failed", "cancelled")
# GridSampler(seed=0) visits the 3 choices in the order 2, 1, 0: the best learning rate first,
# so ASHA (reduction factor 2) prunes both others after their first epoch.
LEARNING_RATES = [0.25, 0.5, 4.0]


def counter_model() -> dict[str, Any]:
    import json

    import keras

    model = keras.Sequential(
        [keras.Input(shape=(20,)), keras.layers.Dense(1, name="unit")], name="counter"
    )
    return dict(json.loads(model.to_json()))


def counter_sweep(dataset: str, epochs: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "name": "counter-lr",
        "base": {
            "model": counter_model(),
            "compile": {
                "loss": "mae",
                "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.01}},
            },
            "data": {"train": {"dataset": dataset, "x": "x", "y": "y"}},
            "fit": {"epochs": epochs, "batch_size": 32},
        },
        "parameters": {
            "learning_rate": {
                "target": "/compile/optimizer/config/learning_rate",
                "categorical": LEARNING_RATES,
            }
        },
        "objective": {"metric": "loss", "direction": "minimize"},
        "sampler": {"type": "grid", "seed": 0},
        "pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
        "budget": {"max_trials": 3, "max_concurrent_trials": 1},
        **extra,
    }


def write_counter(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(4)
    x = rng.random((rows, 20), dtype=np.float32)
    np.savez(path, x=x, y=np.full((rows, 1), 1e4, dtype=np.float32))
    return path


@pytest.fixture(scope="module")
def counter_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_counter(tmp_path_factory.mktemp("sweep-data") / "counter.npz", ROWS)


@pytest.fixture(scope="module")
def long_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_counter(tmp_path_factory.mktemp("sweep-long") / "long.npz", LONG_ROWS)


def submit_sweep(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    sweep_id: str = response.json()["id"]
    return sweep_id


def wait_for_sweep(
    client: httpx.Client, sweep_id: str, ready: Any = None, timeout: float = 180
) -> dict[str, Any]:
    """Poll a sweep until ``ready(sweep)`` (by default: it ended and no trial runs)."""
    deadline = time.monotonic() + timeout
    sweep: dict[str, Any] = {}
    while time.monotonic() < deadline:
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        if ready is not None and ready(sweep):
            return sweep
        trials_done = all(t["status"] not in ("queued", "running") for t in sweep["trials"])
        if ready is None and sweep["status"] in SWEEP_FINAL and trials_done:
            return sweep
        time.sleep(0.2)
    raise AssertionError(f"sweep {sweep_id} not there after {timeout}s: {sweep}")


def test_a_sweep_runs_its_trials_prunes_the_weak_and_names_the_best(
    service: Service, client: httpx.Client, counter_npz: Path, tmp_path: Path
) -> None:
    dataset = upload(client, counter_npz)["id"]
    sweep_id = submit_sweep(client, counter_sweep(dataset))
    sweep = wait_for_sweep(client, sweep_id)

    assert sweep["status"] == "succeeded", sweep
    trials = {trial["number"]: trial for trial in sweep["trials"]}
    assert sorted(trials) == [0, 1, 2]
    by_rate = {trial["params"]["learning_rate"]: trial for trial in trials.values()}
    assert sorted(by_rate) == LEARNING_RATES, "the grid visits each choice once"
    best, weak = by_rate[4.0], [by_rate[0.25], by_rate[0.5]]
    assert (best["number"], best["status"], best["epochs"]) == (0, "succeeded", 3)
    for trial in weak:  # weaker than the first after one epoch: pruned there, by the worker
        assert (trial["status"], trial["epochs"]) == ("pruned", 1), sweep
        assert trial["value"] > best["value"]
    assert sweep["best"] == {
        "number": 0,
        "job": best["job"],
        "params": {"learning_rate": 4.0},
        "value": best["value"],
    }

    # Each trial is a job of its own: listed with its sweep, a pruned one keeps its weights.
    pruned = client.get(f"/v1/jobs/{weak[0]['job']}").json()
    assert pruned["status"] == "pruned" and pruned["sweep"] == sweep_id
    assert len(pruned["history"]["loss"]) == 1 and pruned["links"]["weights"]
    assert client.get(f"/v1/jobs/{best['job']}/weights").status_code == 200
    listed = client.get("/v1/jobs", params={"limit": 10}).json()["items"]
    assert {job["id"] for job in listed if job["sweep"] == sweep_id} == {
        trial["job"] for trial in trials.values()
    }
    pruned_jobs = client.get("/v1/jobs", params={"status": "pruned", "limit": 500}).json()
    assert {weak[0]["job"], weak[1]["job"]} <= {job["id"] for job in pruned_jobs["items"]}
    assert sweep_id in {s["id"] for s in client.get("/v1/sweeps").json()["items"]}

    # The events: each trial's start, epochs and end, then the sweep's end.
    stream = read_events_of_sweep(client, sweep_id)
    ends = [
        data
        for kind, data in stream
        if kind == "trial" and data["status"] in ("succeeded", "pruned")
    ]
    starts = [data for kind, data in stream if kind == "trial" and data["status"] == "running"]
    epochs = [data for kind, data in stream if kind == "epoch"]
    assert sorted(data["number"] for data in starts) == [0, 1, 2]
    assert [(d["number"], d["status"]) for d in ends] == [
        (0, "succeeded"),
        (1, "pruned"),
        (2, "pruned"),
    ]
    assert ends[0]["value"] == best["value"]
    assert len(epochs) == 5 and {"loss"} <= set(epochs[0]["logs"])
    assert stream[-1] == ("sweep", {"status": "succeeded"})


def read_events_of_sweep(client: httpx.Client, sweep_id: str) -> list[tuple[str, Any]]:
    """The sweep's whole event stream, to its end (the server ends it)."""
    with client.stream("GET", f"/v1/sweeps/{sweep_id}/events", timeout=60) as response:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [(event.type, event.data) for event in parse_sse(response.iter_lines())]


def test_a_cancelled_sweep_stops_its_trials_and_starts_no_more(
    embedded_service: Service, long_npz: Path
) -> None:
    with embedded_service.client() as client:
        dataset = upload(client, long_npz)["id"]
        body = counter_sweep(dataset, epochs=200)
        body["budget"] = {"max_trials": 3, "max_concurrent_trials": 2}
        sweep_id = submit_sweep(client, body)

        def training(sweep: dict[str, Any]) -> bool:
            return any(t["status"] == "running" and t["epochs"] >= 1 for t in sweep["trials"])

        wait_for_sweep(client, sweep_id, training, timeout=120)
        refused = client.delete(f"/v1/sweeps/{sweep_id}")
        assert (
            refused.status_code == 409 and "cancel it first" in refused.json()["detail"]["message"]
        )

        cancelled = client.post(f"/v1/sweeps/{sweep_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        sweep = wait_for_sweep(client, sweep_id, timeout=60)
        assert len(sweep["trials"]) == 2, "no trial starts after the cancel"
        assert {t["status"] for t in sweep["trials"]} == {"cancelled"}, sweep
        time.sleep(1.0)  # a few of the driver's passes
        assert len(client.get(f"/v1/sweeps/{sweep_id}").json()["trials"]) == 2
        again = client.post(f"/v1/sweeps/{sweep_id}/cancel")
        assert again.status_code == 409

        jobs = [t["job"] for t in sweep["trials"]]
        assert client.delete(f"/v1/sweeps/{sweep_id}").status_code == 204
        assert client.get(f"/v1/sweeps/{sweep_id}").status_code == 404
        assert all(client.get(f"/v1/jobs/{job}").status_code == 404 for job in jobs)


@pytest.fixture(scope="module")
def faults_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = embedded(
        tmp_path_factory.mktemp("sweep-faults"),
        "sweep-faults",
        REMOTEFIT_LEASE_SECONDS="10",
        REMOTEFIT_SWEEP_SECONDS="1",
        REMOTEFIT_HEARTBEAT_SECONDS="0.3",
        REMOTEFIT_CHECKPOINT_SECONDS="0",
    )
    service.start()
    yield service
    service.stop()


def test_a_sweep_outlives_a_killed_worker_and_a_restart(
    faults_service: Service, long_npz: Path
) -> None:
    with faults_service.client() as client:
        dataset = upload(client, long_npz)["id"]
        body = counter_sweep(dataset, epochs=4)
        body["pruner"] = {"type": "none"}
        sweep_id = submit_sweep(client, body)

        def epochs_in(number: int, count: int) -> Any:
            def check(sweep: dict[str, Any]) -> bool:
                trials = {t["number"]: t for t in sweep["trials"]}
                return number in trials and trials[number]["epochs"] >= count

            return check

        sweep = wait_for_sweep(client, sweep_id, epochs_in(0, 2), timeout=120)
        first = sweep["trials"][0]["job"]
        kill_tree(pid_of(client.get(f"/v1/jobs/{first}").json()["worker"]))
        assert wait_for_job(client, first, timeout=120)["status"] == "succeeded"

        wait_for_sweep(client, sweep_id, epochs_in(1, 1), timeout=120)
    faults_service.restart()  # API and worker, mid-trial
    with faults_service.client() as client:
        sweep = wait_for_sweep(client, sweep_id, timeout=240)
        assert sweep["status"] == "succeeded", sweep
        assert [t["number"] for t in sweep["trials"]] == [0, 1, 2], "none lost, none twice"
        assert sorted(t["params"]["learning_rate"] for t in sweep["trials"]) == LEARNING_RATES
        assert all(t["status"] == "succeeded" and t["epochs"] == 4 for t in sweep["trials"])
        assert client.get(f"/v1/jobs/{first}").json()["attempts"] == 2
        jobs = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
        assert len([job for job in jobs if job["sweep"] == sweep_id]) == 3
        assert sweep["best"]["params"] == {"learning_rate": 4.0}
