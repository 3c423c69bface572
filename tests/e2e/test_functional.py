"""A functional model of two inputs and two outputs, and the other shapes of a Keras job.

Everything goes through HTTP to the real service, on both stacks. Where the service reports
something Keras names (history keys, evaluation keys), the test fits the same model locally and
compares key for key, so the service says exactly what ``model.fit`` would have said.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import seed_job, upload, wait_for_job

EPOCHS = 2
INPUTS = ("features", "extra")
OUTPUTS = ("label", "category")
SPLIT_ROWS = {"train": 240, "val": 60, "test": 60}

LOSS_BY_NAME = {"label": "binary_crossentropy", "category": "sparse_categorical_crossentropy"}
METRICS_BY_NAME = {"label": ["accuracy"], "category": ["sparse_categorical_accuracy"]}


def two_by_two_model() -> Any:
    """Inputs "features" (8,) and "extra" (3,), a shared trunk, outputs "label" and "category"."""
    import keras

    features = keras.Input(shape=(8,), name="features")
    extra = keras.Input(shape=(3,), name="extra")
    trunk = keras.layers.Concatenate(name="joined")([features, extra])
    trunk = keras.layers.Dense(16, activation="relu", name="trunk")(trunk)
    label = keras.layers.Dense(1, activation="sigmoid", name="label")(trunk)
    category = keras.layers.Dense(4, activation="softmax", name="category")(trunk)
    return keras.Model(inputs=[features, extra], outputs=[label, category], name="two_by_two")


def two_by_two_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Train, validation and test splits: x per input, y and sample weights per output."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, rows in SPLIT_ROWS.items():
        features = rng.random((rows, 8)).astype(np.float32)
        extra = rng.random((rows, 3)).astype(np.float32)
        arrays[f"features_{split}"] = features
        arrays[f"extra_{split}"] = extra
        arrays[f"label_{split}"] = (features.sum(axis=1, keepdims=True) > 4).astype(np.int64)
        arrays[f"category_{split}"] = rng.integers(4, size=(rows,))
        arrays[f"label_weight_{split}"] = rng.uniform(0.5, 1.5, size=(rows,))
        arrays[f"category_weight_{split}"] = rng.uniform(0.5, 1.5, size=(rows,))
    return arrays


@pytest.fixture(scope="module")
def two_by_two_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("functional") / "two_by_two.npz"
    np.savez(path, allow_pickle=False, **two_by_two_arrays())
    return path


def split_by_name(dataset: str, split: str) -> dict[str, Any]:
    """A data split whose x, y and sample_weight are objects keyed by layer name."""
    return {
        "dataset": dataset,
        "x": {name: f"{name}_{split}" for name in INPUTS},
        "y": {name: f"{name}_{split}" for name in OUTPUTS},
        "sample_weight": {name: f"{name}_weight_{split}" for name in OUTPUTS},
    }


def split_in_order(dataset: str, split: str) -> dict[str, Any]:
    """The same split as lists of array names, in the model's input and output order."""
    return {
        "dataset": dataset,
        "x": [f"{name}_{split}" for name in INPUTS],
        "y": [f"{name}_{split}" for name in OUTPUTS],
        "sample_weight": [f"{name}_weight_{split}" for name in OUTPUTS],
    }


def by_name_job(dataset: str) -> dict[str, Any]:
    return {
        "name": "two-by-two",
        "model": two_by_two_model().to_json(),
        "compile": {
            "optimizer": "adam",
            "loss": LOSS_BY_NAME,
            "metrics": METRICS_BY_NAME,
            "loss_weights": {"label": 1.0, "category": 0.5},
            "weighted_metrics": METRICS_BY_NAME,
        },
        "data": {
            "train": split_by_name(dataset, "train"),
            "validation": split_by_name(dataset, "val"),
            "test": split_by_name(dataset, "test"),
        },
        "fit": {"epochs": EPOCHS, "batch_size": 32},
        "evaluate": {"batch_size": 32},
    }


def in_order_job(dataset: str) -> dict[str, Any]:
    return {
        "name": "two-by-two-lists",
        "model": two_by_two_model().to_json(),
        "compile": {
            "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
            "loss": [LOSS_BY_NAME[name] for name in OUTPUTS],
            "metrics": [METRICS_BY_NAME[name] for name in OUTPUTS],
            "loss_weights": [1.0, 0.5],
        },
        "data": {
            "train": split_in_order(dataset, "train"),
            "validation": split_in_order(dataset, "val"),
            "test": split_in_order(dataset, "test"),
        },
        "fit": {"epochs": EPOCHS, "batch_size": 32},
        "evaluate": {"batch_size": 32},
    }


def run_job(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    return job


def local_keys(spec: dict[str, Any]) -> tuple[set[str], set[str]]:
    """History and evaluation keys of the same job fitted locally with Keras itself."""
    arrays = two_by_two_arrays()
    model = two_by_two_model()
    model.compile(**spec["compile"])

    def part(split: str, kind: str) -> list[np.ndarray]:
        names = INPUTS if kind == "x" else OUTPUTS
        suffix = "_weight" if kind == "w" else ""
        return [arrays[f"{name}{suffix}_{split}"] for name in names]

    history = model.fit(
        dict(zip(INPUTS, part("train", "x"), strict=True)),
        part("train", "y"),
        sample_weight=part("train", "w"),
        validation_data=(part("val", "x"), part("val", "y"), part("val", "w")),
        epochs=EPOCHS,
        batch_size=32,
        verbose=0,
    )
    evaluation = model.evaluate(
        part("test", "x"),
        part("test", "y"),
        sample_weight=part("test", "w"),
        return_dict=True,
        verbose=0,
    )
    return set(history.history), set(evaluation)


# One trained two-by-two job per service, shared by the artifact tests.
_trained: dict[str, dict[str, Any]] = {}


def trained_job(client: httpx.Client, npz: Path) -> dict[str, Any]:
    key = str(client.base_url)
    if key not in _trained:
        _trained[key] = run_job(client, by_name_job(upload(client, npz)["id"]))
    return _trained[key]


def test_losses_and_metrics_keyed_by_output_name(
    client: httpx.Client, two_by_two_npz: Path
) -> None:
    spec = by_name_job(upload(client, two_by_two_npz)["id"])
    job = run_job(client, spec)
    _trained.setdefault(str(client.base_url), job)

    expected_history = {
        "loss",
        "label_loss",
        "category_loss",
        "label_accuracy",
        "category_sparse_categorical_accuracy",
        "label_weighted_accuracy",
        "category_weighted_sparse_categorical_accuracy",
    }
    expected_history |= {f"val_{key}" for key in expected_history}
    history_keys, evaluation_keys = local_keys(spec)
    assert history_keys == expected_history  # what Keras itself reports
    assert set(job["history"]) == history_keys
    assert all(len(values) == EPOCHS for values in job["history"].values())
    assert set(job["evaluation"]) == evaluation_keys
    assert evaluation_keys == {key for key in expected_history if not key.startswith("val_")}
    assert (job["progress"]["epoch"], job["progress"]["epochs"]) == (EPOCHS, EPOCHS)


def test_losses_and_metrics_as_lists_in_output_order(
    client: httpx.Client, two_by_two_npz: Path
) -> None:
    spec = in_order_job(upload(client, two_by_two_npz)["id"])
    job = run_job(client, spec)

    history_keys, evaluation_keys = local_keys(spec)
    assert history_keys == {
        "loss",
        "label_loss",
        "category_loss",
        "label_accuracy",
        "category_sparse_categorical_accuracy",
        "val_loss",
        "val_label_loss",
        "val_category_loss",
        "val_label_accuracy",
        "val_category_sparse_categorical_accuracy",
    }
    assert set(job["history"]) == history_keys
    assert all(len(values) == EPOCHS for values in job["history"].values())
    assert set(job["evaluation"]) == evaluation_keys


def test_weights_load_into_the_model_rebuilt_from_json(
    client: httpx.Client, two_by_two_npz: Path, tmp_path: Path
) -> None:
    import keras

    job = trained_job(client, two_by_two_npz)
    response = client.get(f"/v1/jobs/{job['id']}/weights")
    assert response.status_code == 200, response.text
    path = tmp_path / "two_by_two.weights.h5"
    path.write_bytes(response.content)

    spec = client.get(job["links"]["spec"]).json()
    model = keras.models.model_from_json(json.dumps(spec["model"]))
    model.load_weights(path)
    arrays = two_by_two_arrays()
    x_test = {name: arrays[f"{name}_test"] for name in INPUTS}
    local = model.predict(x_test, verbose=0)

    remote = client.post(
        f"/v1/jobs/{job['id']}/predict",
        json={"x": {name: values.tolist() for name, values in x_test.items()}},
    )
    assert remote.status_code == 200, remote.text
    predictions = remote.json()["predictions"]
    assert sorted(predictions) == sorted(OUTPUTS)
    for name, values in zip(OUTPUTS, local, strict=True):
        np.testing.assert_allclose(np.array(predictions[name]), values, atol=1e-5)
    assert np.array(predictions["label"]).shape == (SPLIT_ROWS["test"], 1)
    assert np.array(predictions["category"]).shape == (SPLIT_ROWS["test"], 4)

    # The score the server reports is the score of these very weights, per output and weighted.
    model.compile(**spec["compile"])
    score = model.evaluate(
        x_test,
        [arrays[f"{name}_test"] for name in OUTPUTS],
        sample_weight=[arrays[f"{name}_weight_test"] for name in OUTPUTS],
        batch_size=32,
        return_dict=True,
        verbose=0,
    )
    assert score == pytest.approx(job["evaluation"], abs=1e-4)
    # loss_weights apply: the total is label + 0.5 * category (up to Keras' batch averaging).
    evaluation = job["evaluation"]
    assert evaluation["loss"] == pytest.approx(
        evaluation["label_loss"] + 0.5 * evaluation["category_loss"], rel=1e-2
    )


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_whole_model_loads_and_predicts_the_same(
    client: httpx.Client, two_by_two_npz: Path, tmp_path: Path, fmt: str
) -> None:
    import keras

    job = trained_job(client, two_by_two_npz)
    response = client.get(f"/v1/jobs/{job['id']}/model", params={"format": fmt})
    assert response.status_code == 200, response.text
    path = tmp_path / f"two_by_two.{fmt}"
    path.write_bytes(response.content)

    model = keras.models.load_model(path)
    assert [t.name for t in model.inputs] == list(INPUTS)
    arrays = two_by_two_arrays()
    x_test = {name: arrays[f"{name}_test"] for name in INPUTS}
    local = model.predict(x_test, verbose=0)

    remote = client.post(
        f"/v1/jobs/{job['id']}/predict",
        json={"x": {name: values.tolist() for name, values in x_test.items()}},
    )
    assert remote.status_code == 200, remote.text
    predictions = remote.json()["predictions"]
    for name, values in zip(OUTPUTS, local, strict=True):
        np.testing.assert_allclose(np.array(predictions[name]), values, atol=1e-5)


@pytest.mark.parametrize(
    ("compile", "fragment"),
    [
        ({"loss": {"label": "binary_crossentropy"}}, "no loss for ['category']"),
        ({"loss": LOSS_BY_NAME, "loss_weights": {"label": 1.0}}, "missing ['category']"),
        ({"loss": LOSS_BY_NAME, "metrics": ["accuracy"]}, "one entry"),
        ({"loss": LOSS_BY_NAME, "metrics": {"labels": ["accuracy"]}}, "['labels']"),
    ],
)
def test_compile_that_keras_would_refuse_at_the_first_step_is_a_422(
    client: httpx.Client, two_by_two_npz: Path, compile: dict[str, Any], fragment: str
) -> None:
    spec = by_name_job(upload(client, two_by_two_npz)["id"])
    spec["compile"] = compile
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["code"] == "invalid_spec"
    assert fragment in detail["message"]


# --- the single-output seed example ------------------------------------------------------------


def test_class_weight(client: httpx.Client, seed_npz: Path) -> None:
    spec = seed_job(upload(client, seed_npz)["id"], epochs=2, class_weight={"0": 1.0, "1": 2.0})
    job = run_job(client, spec)
    assert sorted(job["history"]) == ["accuracy", "loss"]
    assert all(len(values) == 2 for values in job["history"].values())


def test_validation_split(client: httpx.Client, seed_npz: Path) -> None:
    job = run_job(client, seed_job(upload(client, seed_npz)["id"], epochs=2, validation_split=0.2))
    assert sorted(job["history"]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(values) == 2 for values in job["history"].values())


def test_early_stopping_stops_before_the_last_epoch(client: httpx.Client, seed_npz: Path) -> None:
    callback = {
        "class_name": "EarlyStopping",
        "config": {"monitor": "loss", "patience": 0, "min_delta": 10},
    }
    epochs = 5
    spec = seed_job(upload(client, seed_npz)["id"], epochs=epochs, callbacks=[callback])
    job = run_job(client, spec)
    lengths = {len(values) for values in job["history"].values()}
    assert len(lengths) == 1
    assert lengths.pop() < epochs
    assert job["evaluation"] is not None


# --- inline data -------------------------------------------------------------------------------


def test_inline_arrays_single_input(client: httpx.Client) -> None:
    import keras

    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1, activation="sigmoid")])
    spec = {
        "model": model.to_json(),
        "compile": {"optimizer": "sgd", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
        "data": {
            "train": {"x": [[0.0, 0.1], [0.9, 1.0], [0.2, 0.1], [0.8, 0.7]], "y": [0, 1, 0, 1]},
            "test": {"x": [[0.1, 0.0], [1.0, 0.9]], "y": [[0], [1]]},
        },
        "fit": {"epochs": 2, "batch_size": 2},
    }
    job = run_job(client, spec)
    assert sorted(job["history"]) == ["accuracy", "loss"]
    assert sorted(job["evaluation"]) == ["accuracy", "loss"]


def test_inline_arrays_keyed_by_input_name(client: httpx.Client) -> None:
    arrays = two_by_two_arrays()
    rows = 16

    def inline(split: str) -> dict[str, Any]:
        return {
            "x": {name: arrays[f"{name}_{split}"][:rows].tolist() for name in INPUTS},
            "y": {name: arrays[f"{name}_{split}"][:rows].tolist() for name in OUTPUTS},
        }

    spec = {
        "model": two_by_two_model().to_json(),
        "compile": {"optimizer": "adam", "loss": LOSS_BY_NAME, "metrics": METRICS_BY_NAME},
        "data": {"train": inline("train"), "test": inline("test")},
        "fit": {"epochs": 1, "batch_size": 8},
    }
    job = run_job(client, spec)
    assert {"loss", "label_loss", "category_loss"} <= set(job["history"])
    assert {"loss", "label_accuracy", "category_sparse_categorical_accuracy"} <= set(
        job["evaluation"]
    )


# --- evaluate only -----------------------------------------------------------------------------


def test_zero_epochs_only_evaluates(client: httpx.Client, seed_npz: Path) -> None:
    spec = seed_job(upload(client, seed_npz)["id"], epochs=0)
    del spec["data"]["train"]
    job = run_job(client, spec)
    assert job["history"] == {}
    assert sorted(job["evaluation"]) == ["accuracy", "loss"]
    assert job["links"]["weights"] == f"/v1/jobs/{job['id']}/weights"
