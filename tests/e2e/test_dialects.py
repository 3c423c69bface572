"""Model JSON of older Keras, sent as its users have it, inspected and trained over HTTP.

The models come from the corpus (``tests/corpus``): the seed example written by tf-keras (the
tf.keras 2 dialect), by standalone Keras 2.2.4, and as Keras 2.2.4's ``to_yaml()`` wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import seed_job, upload, wait_for_job

CORPUS = Path(__file__).parents[1] / "corpus"


def corpus_text(relative: str) -> str:
    return (CORPUS / relative).read_text()


def test_inspect_names_the_tf_keras_dialect_and_what_changed(client: httpx.Client) -> None:
    response = client.post("/v1/models/inspect", json={"model": corpus_text("tf_keras2/seed.json")})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dialect"] == "tf.keras2"
    assert any("`batch_input_shape` was dropped" in w for w in answer["warnings"])
    assert [layer["name"] for layer in answer["layers"]] == [
        "dense",
        "dropout",
        "dense_1",
        "dropout_1",
        "dense_2",
    ]
    assert answer["params"]["total"] == 5569
    assert answer["model_json"]["module"] == "keras"  # as Keras 3 writes it

    keras3 = client.post("/v1/models/inspect", json={"model": corpus_text("keras3/seed.json")})
    assert (keras3.json()["dialect"], keras3.json()["warnings"]) == ("keras3", [])


def test_inspect_refuses_yaml_with_a_python_tag(client: httpx.Client) -> None:
    response = client.post(
        "/v1/models/inspect", json={"model": '!!python/object/apply:os.system ["echo pwned"]'}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["code"] == "invalid_model"
    assert "tag" in response.json()["detail"]["message"]


@pytest.mark.parametrize(
    ("relative", "as_string"),
    [
        ("tf_keras2/seed.json", True),
        ("keras2.2/seed.json", False),
        ("yaml/keras22_seed.yaml", True),
    ],
    ids=["tf-keras-json-string", "keras-2.2-json-object", "keras-2.2-yaml"],
)
def test_older_dialects_train_to_succeeded(
    client: httpx.Client, seed_npz: Path, relative: str, as_string: bool
) -> None:
    text = corpus_text(relative)
    model: Any = text if as_string else json.loads(text)
    spec = {**seed_job(upload(client, seed_npz)["id"], epochs=2), "model": model}
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert len(job["history"]["loss"]) == 2
    assert sorted(job["evaluation"]) == ["accuracy", "loss"]
    # The job keeps the model as the user sent it, in its own dialect.
    spec = client.get(job["links"]["spec"]).json()
    assert spec["model"]["keras_version"] in ("2.21.0", "2.2.4")
