"""What Keras accepts, the service accepts: one sample_weight for several outputs, and model
JSON typed by hand, through HTTP on both stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import upload, wait_for_job
from tests.e2e.test_functional import OUTPUTS, trained_job, two_by_two_arrays, two_by_two_model
from tests.models.keras.test_bare import HAND_TYPED


@pytest.fixture(scope="module")
def two_by_two_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keras-inputs") / "two_by_two.npz"
    np.savez(path, allow_pickle=False, **two_by_two_arrays())
    return path


def _evaluate(client: httpx.Client, job: str, dataset: str, y: Any, weight: Any) -> dict[str, Any]:
    """Evaluate job ``job``'s weights on the test split (``fit.epochs`` 0) with these refs."""
    spec = {
        "model": two_by_two_model().to_json(),
        "compile": {
            "optimizer": "adam",
            "loss": ["binary_crossentropy", "sparse_categorical_crossentropy"],
            "weighted_metrics": [["accuracy"], ["sparse_categorical_accuracy"]],
        },
        "initial_weights": {"job": job},
        "data": {
            "test": {
                "dataset": dataset,
                "x": ["features_test", "extra_test"],
                "y": y,
                "sample_weight": weight,
            }
        },
        "fit": {"epochs": 0},
    }
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    done = wait_for_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    evaluation: dict[str, Any] = done["evaluation"]
    return evaluation


def test_one_sample_weight_weighs_every_output(client: httpx.Client, two_by_two_npz: Path) -> None:
    trained = trained_job(client, two_by_two_npz)["id"]
    dataset = upload(client, two_by_two_npz)["id"]
    y_list = [f"{name}_test" for name in OUTPUTS]
    y_object = {name: f"{name}_test" for name in OUTPUTS}
    per_output = _evaluate(client, trained, dataset, y_list, ["label_weight_test"] * 2)
    shared = _evaluate(client, trained, dataset, y_list, "label_weight_test")
    keyed = _evaluate(client, trained, dataset, y_object, "label_weight_test")
    other = _evaluate(client, trained, dataset, y_list, "category_weight_test")
    # One array given once weighs each output exactly as the same array given per output.
    assert shared == pytest.approx(per_output, rel=1e-6)
    assert keyed == pytest.approx(per_output, rel=1e-6)
    assert other["loss"] != pytest.approx(shared["loss"], rel=1e-6)  # the weights do count


def test_one_sample_weight_inline_for_two_outputs(client: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    rows = 40
    spec = {
        "model": two_by_two_model().to_json(),
        "compile": {"loss": ["binary_crossentropy", "sparse_categorical_crossentropy"]},
        "data": {
            "train": {
                "x": {
                    "features": rng.random((rows, 8)).tolist(),
                    "extra": rng.random((rows, 3)).tolist(),
                },
                "y": {
                    "label": rng.integers(2, size=(rows, 1)).tolist(),
                    "category": rng.integers(4, size=rows).tolist(),
                },
                "sample_weight": rng.uniform(0.5, 1.5, size=rows).tolist(),
            }
        },
        "fit": {"epochs": 1, "batch_size": 8},
    }
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    done = wait_for_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    # A length that differs from x's is still refused, at once.
    spec["data"]["train"]["sample_weight"] = [1.0] * (rows - 1)  # type: ignore[index]
    refused = client.post("/v1/jobs", json=spec)
    assert refused.status_code == 422, refused.text
    assert "disagree in length" in refused.json()["detail"]["message"]


def test_a_hand_typed_model_is_inspected_and_trains(client: httpx.Client) -> None:
    inspected = client.post("/v1/models/inspect", json={"model": HAND_TYPED})
    assert inspected.status_code == 200, inspected.text
    report = inspected.json()
    assert report["params"]["total"] == 8 * 16 + 16 + 16 + 1
    assert any("read as Keras' own" in warning for warning in report["warnings"])
    assert any("dense, dense_1" in warning for warning in report["warnings"])

    rng = np.random.default_rng(0)
    spec = {
        "model": HAND_TYPED,
        "compile": {"optimizer": "adam", "loss": "mse"},
        "data": {"train": {"x": rng.random((32, 8)).tolist(), "y": rng.random(32).tolist()}},
        "fit": {"epochs": 2, "batch_size": 8},
    }
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    done = wait_for_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    assert len(done["history"]["loss"]) == 2


def test_a_bare_lambda_is_still_refused(client: httpx.Client) -> None:
    model = json.loads(json.dumps(HAND_TYPED))
    model["config"]["layers"].insert(1, {"class_name": "Lambda", "config": {"function": "x"}})
    response = client.post("/v1/models/inspect", json={"model": model})
    assert response.status_code == 422, response.text
    assert "Lambda" in response.json()["detail"]["message"]
