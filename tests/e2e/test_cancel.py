"""Cancellation, time limits and deletion of jobs, through HTTP on both stacks.

Most jobs here train a "counter": one Dense unit on inputs far below their targets, with an MAE
loss and plain SGD at a learning rate of 2**-10. Every batch then moves the bias by exactly
2**-10, so the bias of a saved model tells exactly how many batches trained it, and so whether
the weights a stopped job kept are those of its last completed epoch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import seed_job, upload, wait_for_job
from tests.e2e.test_events import read_events, submit
from tests.services import Service

ROWS, BATCH = 20_000, 32
STEPS = ROWS // BATCH  # 625 batches an epoch, well under a second here
LEARNING_RATE = 2.0**-10


def counter_model() -> Any:
    import keras

    return keras.Sequential([keras.Input(shape=(20,)), keras.layers.Dense(1)], name="counter")


def counter_job(dataset_id: str, epochs: int = 50, **extra: Any) -> dict[str, Any]:
    return {
        "name": "counter",
        "model": counter_model().to_json(),
        "compile": {
            "loss": "mae",
            "optimizer": {"class_name": "SGD", "config": {"learning_rate": LEARNING_RATE}},
        },
        "data": {"train": {"dataset": dataset_id, "x": "x", "y": "y"}},
        "fit": {"epochs": epochs, "batch_size": BATCH},
        **extra,
    }


@pytest.fixture(scope="module")
def counter_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cancel-data") / "counter.npz"
    rng = np.random.default_rng(2)
    x = rng.random((ROWS, 20), dtype=np.float32)
    np.savez(path, x=x, y=np.full((ROWS, 1), 1e6, dtype=np.float32))
    return path


@pytest.fixture
def counter_data(client: httpx.Client, counter_npz: Path) -> str:
    dataset_id: str = upload(client, counter_npz)["id"]
    return dataset_id


@pytest.fixture
def tiny_data(client: httpx.Client, seed_npz: Path) -> str:
    dataset_id: str = upload(client, seed_npz)["id"]
    return dataset_id


def wait_until(
    client: httpx.Client, job_id: str, ready: Any, what: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if ready(job):
            return job
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: not {what} after {timeout}s: {job}")


def epochs_done(job: dict[str, Any]) -> int:
    return len(job["history"].get("loss", []))


def trained_epochs(client: httpx.Client, job_id: str, folder: Path) -> float:
    """How many whole epochs trained the job's downloadable weights (from the counter's bias)."""
    response = client.get(f"/v1/jobs/{job_id}/weights")
    assert response.status_code == 200, response.text
    path = folder / f"{job_id}.weights.h5"
    path.write_bytes(response.content)
    model = counter_model()
    model.load_weights(path)
    bias = float(model.layers[-1].bias.numpy()[0])
    return bias / LEARNING_RATE / STEPS


def assert_history_of(job: dict[str, Any], epochs: int) -> None:
    history = job["history"]
    assert sorted(history) == ["loss"]
    assert all(len(values) == epochs for values in history.values()), history
    assert job["progress"]["epoch"] == epochs


def test_cancel_a_running_job(
    client: httpx.Client, counter_data: str, tiny_data: str, tmp_path: Path
) -> None:
    job_id = submit(client, counter_job(counter_data))
    wait_until(client, job_id, lambda job: epochs_done(job) >= 2, "2 epochs in")

    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("running", "cancelled")
    cancelled_at = time.monotonic()
    job = wait_for_job(client, job_id, timeout=30)
    assert job["status"] == "cancelled", job
    assert time.monotonic() - cancelled_at < 8, "a running job stops at its next batch"

    # The worker is free at once: the next job starts and finishes right away.
    tiny = submit(client, seed_job(tiny_data, epochs=1))

    epochs = epochs_done(job)
    assert 2 <= epochs < 50
    assert_history_of(job, epochs)
    assert job["error"] is None and job["evaluation"] is None
    assert job["links"]["weights"] and job["links"]["model"]

    # The weights kept are those of the last completed epoch, not of a half-trained one.
    assert trained_epochs(client, job_id, tmp_path) == epochs
    import keras

    x = np.random.default_rng(3).random((16, 20), dtype=np.float32)
    local = counter_model()
    local.load_weights(tmp_path / f"{job_id}.weights.h5")
    remote = client.post(f"/v1/jobs/{job_id}/predict", json={"x": x.tolist()})
    assert remote.status_code == 200, remote.text
    np.testing.assert_allclose(local.predict(x, verbose=0), remote.json()["predictions"])
    whole = tmp_path / "counter.keras"
    whole.write_bytes(client.get(f"/v1/jobs/{job_id}/model").content)
    np.testing.assert_allclose(
        local.predict(x, verbose=0), keras.models.load_model(whole).predict(x, verbose=0)
    )

    stream = read_events(client, job_id, timeout=30)
    assert stream.ended
    assert [e.data["status"] for e in stream.of("status")] == ["queued", "running", "cancelled"]
    assert [e.data["epoch"] for e in stream.of("epoch")] == list(range(1, epochs + 1))
    assert stream.events[-1].event == "status"
    final, last_epoch = stream.events[-1].id, stream.of("epoch")[-1].id
    assert final is not None and last_epoch is not None and final > last_epoch
    assert not stream.of("evaluation")

    remaining = 15 - (time.monotonic() - cancelled_at)
    assert wait_for_job(client, tiny, timeout=max(remaining, 1))["status"] == "succeeded"


def test_cancel_a_queued_job(client: httpx.Client, counter_data: str, tiny_data: str) -> None:
    busy = submit(client, counter_job(counter_data))
    try:
        wait_until(client, busy, lambda job: job["status"] == "running", "running")
        queued = submit(client, seed_job(tiny_data, epochs=1))  # behind the busy worker

        response = client.post(f"/v1/jobs/{queued}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        job = client.get(f"/v1/jobs/{queued}").json()
        assert (job["status"], job["attempts"], job["started_at"]) == ("cancelled", 0, None)
        assert job["finished_at"] is not None
        assert job["links"]["weights"] is None

        for path in ("weights", "model"):
            missing = client.get(f"/v1/jobs/{queued}/{path}")
            assert missing.status_code == 404
            detail = missing.json()["detail"]
            assert detail["code"] == "artifact_not_found"
            assert (
                "cancelled" in detail["message"] and "without a trained model" in detail["message"]
            )
    finally:
        client.post(f"/v1/jobs/{busy}/cancel")
        assert wait_for_job(client, busy, timeout=30)["status"] == "cancelled"

    # Its message is still in the queue; the worker reaches it and leaves it alone.
    after = submit(client, seed_job(tiny_data, epochs=1))
    assert wait_for_job(client, after, timeout=60)["status"] == "succeeded"
    job = client.get(f"/v1/jobs/{queued}").json()
    assert (job["status"], job["attempts"], job["started_at"]) == ("cancelled", 0, None)
    stream = read_events(client, queued, timeout=30)
    assert stream.ended
    assert [(e.event, e.data["status"]) for e in stream.events] == [
        ("status", "queued"),
        ("status", "cancelled"),
    ]


def test_cancel_a_finished_or_unknown_job(client: httpx.Client, tiny_data: str) -> None:
    job_id = submit(client, seed_job(tiny_data, epochs=1))
    assert wait_for_job(client, job_id)["status"] == "succeeded"
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["code"] == "conflict"
    assert "already finished" in detail["message"] and "succeeded" in detail["message"]
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

    unknown = client.post(f"/v1/jobs/{'0' * 32}/cancel")
    assert unknown.status_code == 404
    assert unknown.json()["detail"]["code"] == "job_not_found"


def test_time_limit_fails_the_job_and_keeps_its_epochs(
    client: httpx.Client, counter_data: str, tmp_path: Path
) -> None:
    job_id = submit(client, counter_job(counter_data, epochs=500, time_limit_s=3))
    job = wait_for_job(client, job_id, timeout=30)
    assert job["status"] == "failed", job
    error = job["error"]
    assert error["code"] == "time_limit"
    assert "time limit of 3 s" in error["message"]
    assert 3 <= job["timings"]["running_s"] < 20

    epochs = epochs_done(job)
    assert 1 <= epochs < 500
    assert_history_of(job, epochs)
    assert f"after {epochs} whole epochs" in error["message"]
    assert trained_epochs(client, job_id, tmp_path) == epochs

    stream = read_events(client, job_id, timeout=30)
    assert stream.events[-1].data == {"status": "failed", "error": error}
    assert len(stream.of("epoch")) == epochs


def test_time_limit_over_the_servers_maximum_is_refused(
    client: httpx.Client, counter_data: str
) -> None:
    week = 7 * 24 * 3600  # REMOTEFIT_MAX_JOB_SECONDS by default
    response = client.post("/v1/jobs", json=counter_job(counter_data, time_limit_s=week + 1))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "limit_exceeded"
    assert str(week + 1) in detail["message"] and str(week) in detail["message"]
    assert "REMOTEFIT_MAX_JOB_SECONDS" in detail["message"]


def test_deleting_a_running_job_stops_it_and_leaves_no_files(
    client: httpx.Client, service: Service, counter_data: str, tiny_data: str
) -> None:
    job_id = submit(client, counter_job(counter_data))
    wait_until(client, job_id, lambda job: epochs_done(job) >= 1, "1 epoch in")
    folder = service.store_root / "jobs" / job_id

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/events").status_code == 404

    # The worker notices and takes the next job; by then it has stopped writing files.
    tiny = submit(client, seed_job(tiny_data, epochs=1))
    assert wait_for_job(client, tiny, timeout=30)["status"] == "succeeded"
    deadline = time.monotonic() + 5
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists(), sorted(p.name for p in folder.iterdir())


def test_a_cancel_during_evaluate_keeps_the_trained_job_and_its_restored_weights(
    client: httpx.Client, counter_data: str, tmp_path: Path
) -> None:
    """A cancel that arrives once training is over is too late to stop anything: the job ends
    succeeded, evaluated, with the weights EarlyStopping(restore_best_weights=True) restored.

    EarlyStopping watches the loss with mode "max", so its best epoch is the first (the counter's
    loss only falls): the restored weights are one epoch's, the last epoch's are three. The
    evaluation, one sample a step, lasts seconds: the cancel is sent as soon as the third epoch
    is in the history, while the job is still running.
    """
    early = {
        "class_name": "EarlyStopping",
        "config": {"monitor": "loss", "mode": "max", "patience": 10, "restore_best_weights": True},
    }
    job = counter_job(counter_data, epochs=3)
    job["compile"]["steps_per_execution"] = 1  # one sample per call into TensorFlow: slow
    job["fit"]["callbacks"] = [early]
    job["data"]["test"] = {"dataset": counter_data, "x": "x", "y": "y"}
    job["evaluate"] = {"batch_size": 1, "steps": 10_000}
    job_id = submit(client, job)
    wait_until(client, job_id, lambda job: epochs_done(job) == 3, "trained", timeout=120)

    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "running"  # asked while it evaluates
    job = wait_for_job(client, job_id, timeout=120)

    assert job["status"] == "succeeded", job
    assert job["error"] is None
    assert job["evaluation"] is not None and "loss" in job["evaluation"]
    assert_history_of(job, 3)
    assert trained_epochs(client, job_id, tmp_path) == 1  # the best epoch's, as restored
    stream = read_events(client, job_id, timeout=30)
    assert [e.data["status"] for e in stream.of("status")] == ["queued", "running", "succeeded"]
    assert len(stream.of("evaluation")) == 1
