"""Weights that load back in the user's Keras (3 or tf-keras), and jobs that start from weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import (
    seed_arrays,
    seed_job,
    seed_model,
    tf_keras_seed_model,
    upload,
    wait_for_job,
)


def _run(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    return job


def _save(client: httpx.Client, job_id: str, path: Path, fmt: str | None = None) -> Path:
    params = {"format": fmt} if fmt else {}
    response = client.get(f"/v1/jobs/{job_id}/weights", params=params)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def _remote_predictions(client: httpx.Client, job_id: str, x: np.ndarray) -> np.ndarray:
    response = client.post(f"/v1/jobs/{job_id}/predict", json={"x": x.tolist()})
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["predictions"])


@pytest.fixture
def dataset(client: httpx.Client, seed_npz: Path) -> str:
    return str(upload(client, seed_npz)["id"])


def test_a_tf_keras_model_trains_and_its_weights_load_in_tf_keras(
    client: httpx.Client, dataset: str, tmp_path: Path
) -> None:
    model = tf_keras_seed_model()
    spec = seed_job(dataset, epochs=2)
    spec["model"] = model.to_json()
    job = _run(client, spec)
    x = seed_arrays()["x_test"]
    default = _save(client, job["id"], tmp_path / "seed.h5")  # Keras 2 layout by default
    model.load_weights(default)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), _remote_predictions(client, job["id"], x), atol=1e-5
    )
    # Asked for explicitly, the Keras 3 layout loads into the same model built by Keras 3.
    import keras

    keras3 = keras.models.model_from_json(json.dumps(_keras3_json(client, model.to_json())))
    keras3.load_weights(_save(client, job["id"], tmp_path / "seed.weights.h5", "keras3"))
    np.testing.assert_allclose(keras3.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_get_weights_as_json(client: httpx.Client, dataset: str) -> None:
    job = _run(client, seed_job(dataset, epochs=1))
    body = client.get(f"/v1/jobs/{job['id']}/weights", params={"format": "json"}).json()
    assert body["shapes"] == [[20, 64], [64], [64, 64], [64], [64, 1], [1]]
    model = seed_model()
    model.set_weights([np.asarray(w, dtype=np.float32) for w in body["weights"]])
    x = seed_arrays()["x_test"]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), _remote_predictions(client, job["id"], x), atol=1e-5
    )


def test_a_job_starts_from_an_earlier_jobs_weights(client: httpx.Client, dataset: str) -> None:
    first = _run(client, seed_job(dataset, epochs=3))
    spec = seed_job(dataset, epochs=0)
    del spec["data"]["train"]
    spec["initial_weights"] = {"job": first["id"]}
    evaluated = _run(client, spec)
    # Evaluating the same weights on the same data gives the same score.
    assert evaluated["evaluation"] == pytest.approx(first["evaluation"], abs=1e-5)
    assert evaluated["history"] == {}


@pytest.mark.parametrize("layout", ["keras3", "keras2"])
def test_a_job_starts_from_an_uploaded_weights_file(
    client: httpx.Client, dataset: str, tmp_path: Path, layout: str
) -> None:
    model = seed_model()  # the user's local model, with its own initial weights
    if layout == "keras3":
        path = tmp_path / "mine.weights.h5"
        model.save_weights(path)
    else:
        tf_model = tf_keras_seed_model()
        tf_model.set_weights(model.get_weights())
        path = tmp_path / "mine.h5"
        tf_model.save_weights(path)
    weights = upload(client, path)
    spec = seed_job(dataset, epochs=0)
    spec["initial_weights"] = {"dataset": weights["id"]}
    job = _run(client, spec)
    x = seed_arrays()["x_test"]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), _remote_predictions(client, job["id"], x), atol=1e-5
    )


def test_by_name_and_skip_mismatch_for_a_changed_head(
    client: httpx.Client, dataset: str, tmp_path: Path
) -> None:
    import keras

    base = seed_model()
    path = tmp_path / "base.h5"
    tf_model = tf_keras_seed_model()
    tf_model.set_weights(base.get_weights())
    tf_model.save_weights(path)
    weights = upload(client, path)
    # Fine-tuning: the same body with a new, differently shaped head named otherwise.
    head = json.loads(tf_model.to_json())
    head["config"]["layers"][-1]["config"].update({"units": 3, "name": "new_head"})
    spec = seed_job(dataset, epochs=0)
    spec["model"] = head
    spec["compile"] = {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    spec["initial_weights"] = {"dataset": weights["id"], "by_name": True, "skip_mismatch": True}
    job = _run(client, spec)
    downloaded = keras.models.load_model(_model_file(client, job["id"], tmp_path))
    np.testing.assert_allclose(downloaded.layers[0].get_weights()[0], base.get_weights()[0])


def _model_file(client: httpx.Client, job_id: str, folder: Path) -> Path:
    path = folder / "model.keras"
    path.write_bytes(client.get(f"/v1/jobs/{job_id}/model").content)
    return path


def test_weights_that_do_not_exist_are_refused_at_once(client: httpx.Client, dataset: str) -> None:
    spec = seed_job(dataset, epochs=0)
    spec["initial_weights"] = {"job": "0" * 32}
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 422
    assert "initial_weights" in response.json()["detail"]["message"]
    spec["initial_weights"] = {"dataset": dataset}  # an .npz, not weights
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 422
    assert "HDF5" in response.json()["detail"]["message"]
    spec["initial_weights"] = {"job": "a", "dataset": "b"}
    assert client.post("/v1/jobs", json=spec).status_code == 422


def _keras3_json(client: httpx.Client, model_json: str) -> dict[str, Any]:
    """A Keras 2 model JSON as the server normalises it for Keras 3 (``/inspect``)."""
    answer: dict[str, Any] = client.post("/v1/models/inspect", json={"model": model_json}).json()
    return dict(answer["model_json"])
