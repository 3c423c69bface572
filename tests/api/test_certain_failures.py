"""Jobs the API can know will fail: refused at submit, never queued to fail on a worker.

Each used to be a 201 and then a failed job: a ``validation_split`` that Keras' own rule cannot
split, ``class_weight`` with ``sample_weight``, and initializers that fail only when the real
weights are made. Runs on the embedded default and on Redis + PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_hostile_requests import tiny_job
from tests.assertions import assert_rejected, snapshot
from tests.conftest import wait_for_job
from tests.services import Service


def _samples(count: int) -> dict[str, Any]:
    return {"x": [[float(i), 1.0, 2.0] for i in range(count)], "y": [[1.0]] * count}


def _conv(kind: str, rank: int, **initializers: str) -> dict[str, Any]:
    """A model of one convolution over inputs of ``rank`` - 2 spatial axes and 2 channels."""
    import json

    import keras

    layer = getattr(keras.layers, kind)(2, 2, name="conv")
    model = keras.Sequential([keras.Input((4,) * (rank - 2) + (2,)), layer])
    parsed: dict[str, Any] = json.loads(model.to_json())
    # Written into the JSON: Keras here would fail to build it, as the worker would.
    config = parsed["config"]["layers"][-1]["config"]
    for argument, name in initializers.items():
        config[argument] = keras.saving.serialize_keras_object(keras.initializers.get(name))
    return parsed


@pytest.mark.parametrize(("samples", "split"), [(2, 0.6), (1, 0.5), (3, 0.9), (10, 0.95), (4, 0.8)])
def test_validation_split_that_keras_cannot_split(
    client: httpx.Client, service: Service, samples: int, split: float
) -> None:
    before = snapshot(client, service)
    body = tiny_job(data={"train": _samples(samples)}, fit={"epochs": 1, "validation_split": split})
    response = client.post("/v1/jobs", json=body)
    assert_rejected(response, 422, "dataset_mismatch", "validation_split", f"{samples} samples")
    assert snapshot(client, service) == before


def test_validation_split_at_keras_edge_trains(client: httpx.Client) -> None:
    body = tiny_job(data={"train": _samples(2)}, fit={"epochs": 1, "validation_split": 0.5})
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert "val_loss" in job["history"]


@pytest.mark.parametrize("weights_in", ["train", "train-named"])
def test_class_weight_with_sample_weight(
    client: httpx.Client, service: Service, weights_in: str
) -> None:
    before = snapshot(client, service)
    train = {**_samples(4), "sample_weight": [1.0, 2.0, 1.0, 1.0]}
    if weights_in == "train-named":
        train["sample_weight"] = {"out": [1.0, 2.0, 1.0, 1.0]}
    body = tiny_job(data={"train": train}, fit={"epochs": 1, "class_weight": {"0": 1, "1": 2}})
    response = client.post("/v1/jobs", json=body)
    assert_rejected(response, 422, "dataset_mismatch", "class_weight", "sample_weight")
    assert snapshot(client, service) == before


@pytest.mark.parametrize(
    ("kind", "rank", "initializers", "phrases"),
    [
        ("Conv2D", 4, {"kernel_initializer": "identity"}, ("conv/kernel", "Identity", "rank 4")),
        ("Conv1D", 3, {"kernel_initializer": "identity"}, ("conv/kernel", "Identity", "rank 3")),
        ("Conv2D", 4, {"bias_initializer": "orthogonal"}, ("conv/bias", "Orthogonal", "rank 1")),
        ("Conv1D", 3, {"bias_initializer": "identity"}, ("conv/bias", "Identity", "rank 1")),
    ],
)
def test_initializer_that_fails_only_on_real_weights(
    client: httpx.Client,
    service: Service,
    kind: str,
    rank: int,
    initializers: dict[str, str],
    phrases: tuple[str, ...],
) -> None:
    before = snapshot(client, service)
    model = _conv(kind, rank, **initializers)
    bodies = {"/v1/jobs": tiny_job(model=model), "/v1/models/inspect": {"model": model}}
    for path, body in bodies.items():
        assert_rejected(client.post(path, json=body), 422, "invalid_model", *phrases)
    assert snapshot(client, service) == before
