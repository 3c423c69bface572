"""The seed example, run remotely exactly as its Keras author would run it locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import seed_arrays, seed_job, seed_model, upload, wait_for_job
from tests.services import Service


@pytest.fixture
def seed_run(client: httpx.Client, seed_npz: Path) -> dict[str, Any]:
    dataset = upload(client, seed_npz)
    response = client.post("/v1/jobs", json=seed_job(dataset["id"]))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    return wait_for_job(client, response.json()["id"])


def test_upload_lists_every_array(client: httpx.Client, seed_npz: Path) -> None:
    dataset = upload(client, seed_npz)
    assert dataset["format"] == "npz"
    assert dataset["arrays"] == [
        {"name": "x_train", "shape": [1000, 20], "dtype": "float64"},
        {"name": "y_train", "shape": [1000, 1], "dtype": "int64"},
        {"name": "x_test", "shape": [100, 20], "dtype": "float64"},
        {"name": "y_test", "shape": [100, 1], "dtype": "int64"},
    ]
    assert client.get(f"/v1/datasets/{dataset['id']}").json() == dataset
    assert dataset["id"] in [d["id"] for d in client.get("/v1/datasets").json()["items"]]


def test_seed_example_trains_and_evaluates(seed_run: dict[str, Any]) -> None:
    job = seed_run
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1
    assert sorted(job["history"]) == ["accuracy", "loss"]
    assert all(len(values) == 20 for values in job["history"].values())
    assert all(0.0 <= value <= 1.0 for value in job["history"]["accuracy"])
    assert sorted(job["evaluation"]) == ["accuracy", "loss"]
    progress = job["progress"]
    assert (progress["epoch"], progress["epochs"], progress["steps"]) == (20, 20, 8)
    assert progress["elapsed_s"] > 0 and progress["eta_s"] == 0
    assert job["started_at"] and job["finished_at"]
    assert job["timings"]["running_s"] > 0
    assert job["links"]["weights"] == f"/v1/jobs/{job['id']}/weights"


def test_weights_load_into_the_users_keras(
    client: httpx.Client, seed_run: dict[str, Any], tmp_path: Path
) -> None:
    job_id = seed_run["id"]
    response = client.get(f"/v1/jobs/{job_id}/weights")
    assert response.status_code == 200
    assert 'filename="seed-example.weights.h5"' in response.headers["content-disposition"]
    path = tmp_path / "seed.weights.h5"
    path.write_bytes(response.content)

    model = seed_model()  # rebuilt locally from the user's own code
    model.load_weights(path)
    x_test = seed_arrays()["x_test"]
    local = model.predict(x_test, verbose=0)
    remote = client.post(f"/v1/jobs/{job_id}/predict", json={"x": x_test.tolist()})
    assert remote.status_code == 200, remote.text
    np.testing.assert_allclose(local, np.array(remote.json()["predictions"]), atol=1e-5)

    # The score the server reports is the score of these very weights.
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    score = model.evaluate(x_test, seed_arrays()["y_test"], batch_size=128, verbose=0)
    assert score == pytest.approx(
        [seed_run["evaluation"]["loss"], seed_run["evaluation"]["accuracy"]], abs=1e-4
    )


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_whole_model_downloads(
    client: httpx.Client, seed_run: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    import keras

    response = client.get(f"/v1/jobs/{seed_run['id']}/model", params={"format": fmt})
    assert response.status_code == 200
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(response.content)
    model = keras.models.load_model(path)
    reference = seed_model()
    reference.load_weights(_download(client, seed_run["id"], tmp_path))
    x = seed_arrays()["x_test"][:10]
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0))


def _download(client: httpx.Client, job_id: str, folder: Path) -> Path:
    path = folder / "weights.weights.h5"
    path.write_bytes(client.get(f"/v1/jobs/{job_id}/weights").content)
    return path


def test_predict_on_dataset_arrays(client: httpx.Client, seed_run: dict[str, Any]) -> None:
    dataset_id = client.get(seed_run["links"]["spec"]).json()["data"]["test"]["dataset"]
    response = client.post(
        f"/v1/jobs/{seed_run['id']}/predict", json={"dataset": dataset_id, "x": "x_test"}
    )
    assert response.status_code == 200, response.text
    assert np.array(response.json()["predictions"]).shape == (100, 1)


def test_list_filter_and_page_jobs(client: httpx.Client, seed_run: dict[str, Any]) -> None:
    succeeded = client.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert seed_run["id"] in [job["id"] for job in succeeded["items"]]
    assert all(job["status"] == "succeeded" for job in succeeded["items"])
    assert succeeded["total"] >= 1
    first = client.get("/v1/jobs", params={"limit": 1, "offset": 0}).json()
    second = client.get("/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert len(first["items"]) == 1
    if first["total"] > 1:
        assert first["items"][0]["id"] != second["items"][0]["id"]
    bad = client.get("/v1/jobs", params={"status": "finished"})
    assert bad.status_code == 422
    assert "status" in bad.json()["detail"]["message"]


def test_delete_job_removes_it_and_its_artifacts(
    client: httpx.Client, service: Service, seed_run: dict[str, Any]
) -> None:
    job_id = seed_run["id"]
    folder = service.store_root / "jobs" / job_id
    assert (folder / "weights.weights.h5").is_file()
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/weights").json()["detail"]["code"] == "job_not_found"
    assert not folder.exists()


def test_delete_dataset(client: httpx.Client, service: Service, seed_npz: Path) -> None:
    dataset = upload(client, seed_npz)
    folder = service.store_root / "datasets" / dataset["id"]
    assert folder.is_dir()
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    assert not folder.exists()


def test_everything_survives_a_restart(
    client: httpx.Client, service: Service, seed_run: dict[str, Any], seed_npz: Path
) -> None:
    dataset = upload(client, seed_npz)
    service.restart()
    with service.client() as fresh:
        assert fresh.get(f"/v1/jobs/{seed_run['id']}").json()["status"] == "succeeded"
        assert fresh.get(f"/v1/datasets/{dataset['id']}").json()["arrays"] == dataset["arrays"]
        assert fresh.get(f"/v1/jobs/{seed_run['id']}/weights").status_code == 200
        # And the restarted worker trains the next job.
        job = fresh.post("/v1/jobs", json=seed_job(dataset["id"], epochs=1)).json()
        assert wait_for_job(fresh, job["id"])["status"] == "succeeded"
