"""Every bad job gets a 4xx that names its problem, never a traceback, and creates nothing.

Each case starts from the seed example (``seed_job`` on an uploaded dataset) or a tiny inline
job and breaks one thing. Runs on the embedded default and on Redis + PostgreSQL.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.assertions import assert_rejected, snapshot
from tests.conftest import seed_arrays, seed_job, upload, wait_for_job
from tests.services import Service

Spec = dict[str, Any]
# The seed model's layers, renamed so that messages can be checked by name.
LAYER_NAMES = ["input", "hidden_1", "dropout_1", "hidden_2", "dropout_2", "output"]
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def submit_rejected(
    client: httpx.Client,
    service: Service,
    body: Spec | bytes,
    status: int,
    code: str,
    *phrases: str,
) -> None:
    """POST a job that must be refused, and check that nothing was created."""
    before = snapshot(client, service)
    if isinstance(body, bytes):
        response = client.post(
            "/v1/jobs", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = client.post("/v1/jobs", json=body)
    assert_rejected(response, status, code, *phrases)
    assert snapshot(client, service) == before
    assert before["tmp"] == []


@pytest.fixture(scope="module")
def validation_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed data plus arrays that fit the seed model badly."""
    arrays = seed_arrays()
    rng = np.random.default_rng(1)
    arrays["x_train_19"] = rng.random((1000, 19))
    arrays["y_train_3"] = rng.random((1000, 3))
    arrays["x_train_999"] = rng.random((999, 20))
    path = tmp_path_factory.mktemp("validation") / "validation.npz"
    np.savez(path, allow_pickle=False, **arrays)
    return path


@pytest.fixture(scope="module")
def uploaded() -> dict[str, str]:
    """Dataset id per stack, so each stack gets the file once."""
    return {}


@pytest.fixture
def dataset_id(
    service: Service, client: httpx.Client, validation_npz: Path, uploaded: dict[str, str]
) -> str:
    if service.name not in uploaded:
        uploaded[service.name] = upload(client, validation_npz)["id"]
    return uploaded[service.name]


@pytest.fixture
def base(dataset_id: str) -> Spec:
    """The seed example as a job, its model JSON parsed and its layers named."""
    spec = seed_job(dataset_id, epochs=1)
    spec["model"] = json.loads(spec["model"])
    for layer, name in zip(spec["model"]["config"]["layers"], LAYER_NAMES, strict=True):
        layer["config"]["name"] = name
    return spec


def tiny_job(**fit: Any) -> Spec:
    """A job on inline arrays that trains in well under a second."""
    import keras

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid", name="output")]
    )
    return {
        "name": "tiny",
        "model": json.loads(model.to_json()),
        "compile": {"optimizer": "adam", "loss": "binary_crossentropy"},
        "data": {
            "train": {
                "x": rng.random((16, 4)).round(3).tolist(),
                "y": rng.integers(2, size=16).tolist(),
            }
        },
        "fit": {"epochs": 1, "batch_size": 8, **fit},
    }


def lambda_model() -> dict[str, Any]:
    """A real functional Keras model with a Lambda layer named "doubler"."""
    import keras

    inputs = keras.Input((20,), name="features")
    doubled = keras.layers.Lambda(lambda tensor: tensor * 2, name="doubler")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(doubled)
    result: dict[str, Any] = json.loads(keras.Model(inputs, outputs).to_json())
    return result


def layer(spec: Spec, index: int) -> dict[str, Any]:
    result: dict[str, Any] = spec["model"]["config"]["layers"][index]
    return result


def replace_model(value: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec["model"] = value(spec) if callable(value) else value

    return change


def set_in(path: str, value: Any) -> Callable[[Spec], None]:
    """Set ``spec[a][b]...`` for ``path`` "a.b...", creating nothing else."""

    def change(spec: Spec) -> None:
        *parents, key = path.split(".")
        target = spec
        for part in parents:
            target = target[part]
        target[key] = value

    return change


def set_layer(index: int, **fields: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        layer(spec, index).update(fields)

    return change


def set_layer_config(index: int, **config: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        layer(spec, index)["config"].update(config)

    return change


def insert_layer(index: int, class_name: str, **config: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        new = {"module": "keras.layers", "class_name": class_name, "config": config}
        spec["model"]["config"]["layers"].insert(index, new)

    return change


def set_train(**refs: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec["data"]["train"].update(refs)

    return change


MODEL_CASES = [
    pytest.param(
        replace_model({"foo": 1}),
        "invalid_model",
        ["not a Keras model JSON", "['foo']"],
        id="not-a-model-json",
    ),
    pytest.param(
        replace_model('{"class_name": "Sequential", "config": '),
        "invalid_request",
        ["`model` is a string but not JSON"],
        id="string-that-is-not-json",
    ),
    pytest.param(
        replace_model(lambda spec: layer(spec, 1)),
        "invalid_model",
        ["not of a single layer", "'Dense'"],
        id="a-single-layer",
    ),
    pytest.param(
        replace_model(lambda spec: lambda_model()),
        "forbidden_model",
        ["'doubler'", "Lambda", "arbitrary Python code"],
        id="lambda-layer",
    ),
    pytest.param(
        set_layer(1, module="os"),
        "forbidden_model",
        ["'hidden_1'", "module 'os'"],
        id="module-outside-keras",
    ),
    pytest.param(
        set_layer(1, registered_name="MyDense"),
        "forbidden_model",
        ["'hidden_1'", "registered custom object ('MyDense')"],
        id="registered-custom-object",
    ),
    pytest.param(
        set_layer(1, class_name="TFSMLayer"),
        "forbidden_model",
        ["'hidden_1'", "TFSMLayer", "SavedModel"],
        id="tfsm-layer",
    ),
    pytest.param(
        insert_layer(1, "StringLookup", name="lookup", vocabulary="/etc/passwd"),
        "forbidden_model",
        ["'lookup'", "`vocabulary`", "file path"],
        id="lookup-vocabulary-path",
    ),
    pytest.param(
        set_layer(1, class_name="FancyDense"),
        "forbidden_model",
        ["'hidden_1'", "'FancyDense'"],
        id="unknown-layer-class",
    ),
    pytest.param(
        set_layer_config(1, units=-3),
        "invalid_model",
        ["does not build", "units=-3"],
        id="dense-negative-units",
    ),
    pytest.param(
        insert_layer(2, "Reshape", name="fold", target_shape=[3, 7]),
        "invalid_model",
        ["does not build", "Reshape", "target_shape=(3, 7)"],
        id="reshape-that-does-not-fit",
    ),
]

COMPILE_CASES = [
    pytest.param(
        set_in("compile.optimizer", "adamz"),
        "invalid_spec",
        ["`compile.optimizer`", "'adamz'", "'adam'"],
        id="unknown-optimizer",
    ),
    pytest.param(
        set_in("compile.loss", "binary_crossentropi"),
        "invalid_spec",
        ["`compile.loss`", "'binary_crossentropi'"],
        id="unknown-loss",
    ),
    pytest.param(
        set_in("compile.metrics", ["accuracy", "precisionz"]),
        "invalid_spec",
        ["`compile.metrics[1]`", "'precisionz'"],
        id="unknown-metric-in-list",
    ),
    pytest.param(
        set_in("compile.metrics", {"output": ["precisionz"]}),
        "invalid_spec",
        ["`compile.metrics.output", "'precisionz'"],
        id="unknown-metric-per-output",
    ),
    pytest.param(
        set_in("compile.metrics", {"out": ["accuracy"]}),
        "invalid_spec",
        ["['out']", "not outputs of the model", "['output']"],
        id="metrics-keyed-by-unknown-output",
    ),
    pytest.param(
        set_in("compile.sample_weight_mode", "temporal"),
        "invalid_request",
        ["Keras 3 removed `sample_weight_mode`", "`sample_weight` in `data.train`"],
        id="keras2-sample-weight-mode",
    ),
    pytest.param(
        set_in("compile.target_tensors", [[0.0]]),
        "invalid_request",
        ["Keras 3 removed `target_tensors`", "as `y` in `data.train`"],
        id="keras2-target-tensors",
    ),
    pytest.param(
        set_in("compile.learning_rate", 0.01),
        "invalid_request",
        ["`compile` has no argument 'learning_rate'", "optimizer"],
        id="unknown-compile-argument",
    ),
]

DATA_CASES = [
    pytest.param(
        set_train(dataset=UNKNOWN_ID),
        "dataset_mismatch",
        ["`data.train.dataset`", UNKNOWN_ID, "POST /v1/datasets"],
        id="unknown-dataset",
    ),
    pytest.param(
        set_train(x="x_training"),
        "dataset_mismatch",
        ["'x_training'", "Arrays in it:", "'x_train'", "'y_train'"],
        id="unknown-array",
    ),
    pytest.param(
        set_train(x="x_train_19"),
        "dataset_mismatch",
        ["`data.train.x`", "[1000, 19]", "(batch, 20)"],
        id="x-shape-does-not-fit-input",
    ),
    pytest.param(
        set_train(y="y_train_3"),
        "dataset_mismatch",
        ["`data.train.y`", "'output'", "[1000, 3]", "[None, 1]"],
        id="y-shape-does-not-fit-output",
    ),
    pytest.param(
        set_train(x="x_train_999"),
        "dataset_mismatch",
        ["disagree in length", "999", "1000"],
        id="x-and-y-lengths-differ",
    ),
    pytest.param(
        set_in("data.train", {"x": [[0.1] * 20, [0.2] * 19], "y": [1, 0]}),
        "dataset_mismatch",
        ["`data.train.x`", "not a rectangular array"],
        id="inline-ragged-rows",
    ),
    pytest.param(
        set_in("data.train", {"x": [["a"] * 20, ["b"] * 20], "y": [1, 0]}),
        "dataset_mismatch",
        ["`data.train.x`", "list of numbers", "'a'"],
        id="inline-strings",
    ),
    pytest.param(
        set_in("data.train", {"x": "x_train", "y": "y_train"}),
        "dataset_mismatch",
        ["`data.train.x`", "'x_train'", "no `dataset`"],
        id="inline-name-without-dataset",
    ),
]

FIT_CASES = [
    pytest.param(
        set_in("fit.epochs", -1),
        "invalid_request",
        ["`fit.epochs`", "greater than or equal to 0", "Received: -1"],
        id="negative-epochs",
    ),
    pytest.param(
        set_in("fit.epochs", 100_001),
        "limit_exceeded",
        ["`fit.epochs` is 100001", "limit of 100000", "REMOTEFIT_MAX_EPOCHS"],
        id="epochs-over-server-limit",
    ),
    pytest.param(
        set_in("fit.batch_size", 0),
        "invalid_request",
        ["`fit.batch_size`", "greater than or equal to 1", "Received: 0"],
        id="zero-batch-size",
    ),
    pytest.param(
        set_in("fit.validation_split", 1.0),
        "invalid_request",
        ["`fit.validation_split`", "less than 1", "Received: 1.0"],
        id="validation-split-one",
    ),
    pytest.param(
        set_in("fit.validation_split", -0.1),
        "invalid_request",
        ["`fit.validation_split`", "greater than or equal to 0", "Received: -0.1"],
        id="validation-split-negative",
    ),
    pytest.param(
        set_in("fit.initial_epoch", 1),
        "invalid_request",
        ["`initial_epoch` must be below `epochs`", "initial_epoch=1, epochs=1"],
        id="initial-epoch-not-below-epochs",
    ),
    pytest.param(
        set_in("fit.use_multiprocessing", True),
        "invalid_request",
        ["`fit.use_multiprocessing` is not a known field"],
        id="unknown-fit-argument",
    ),
    pytest.param(
        set_in("epochs", 5),
        "invalid_request",
        ["`epochs` is not a known field"],
        id="unknown-top-level-field",
    ),
    pytest.param(
        set_in(
            "fit.callbacks", [{"class_name": "ModelCheckpoint", "config": {"filepath": "m.keras"}}]
        ),
        "invalid_spec",
        ["`fit.callbacks[0]`", "ModelCheckpoint", "stores the trained model itself"],
        id="model-checkpoint-refused",
    ),
    pytest.param(
        set_in("fit.callbacks", [{"class_name": "WandbCallback"}]),
        "invalid_spec",
        ["unknown callback 'WandbCallback'", "EarlyStopping"],
        id="unknown-callback",
    ),
    pytest.param(
        set_in("fit.callbacks", [{"class_name": "EarlyStopping", "config": {"patiense": 3}}]),
        "invalid_spec",
        ["`fit.callbacks[0]` (EarlyStopping)", "'patiense'"],
        id="early-stopping-bad-config",
    ),
    pytest.param(
        set_in("fit.class_weight", {"cat": 1.0, "1": 2.0}),
        "invalid_request",
        ["`fit.class_weight`", "class indices", "'cat'"],
        id="class-weight-non-integer-key",
    ),
]


def test_spec_cases_start_from_a_good_job(client: httpx.Client, base: Spec) -> None:
    """The base every case breaks is itself accepted, so each case fails for its own reason."""
    good = copy.deepcopy(base)
    response = client.post("/v1/jobs", json=good)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    client.post(f"/v1/jobs/{job_id}/cancel")
    wait_for_job(client, job_id, timeout=60)
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204


@pytest.mark.parametrize(("change", "code", "phrases"), MODEL_CASES)
def test_bad_model_is_rejected(
    client: httpx.Client,
    service: Service,
    base: Spec,
    change: Callable[[Spec], None],
    code: str,
    phrases: list[str],
) -> None:
    change(base)
    submit_rejected(client, service, base, 422, code, *phrases)


@pytest.mark.parametrize(("change", "code", "phrases"), COMPILE_CASES)
def test_bad_compile_is_rejected(
    client: httpx.Client,
    service: Service,
    base: Spec,
    change: Callable[[Spec], None],
    code: str,
    phrases: list[str],
) -> None:
    change(base)
    submit_rejected(client, service, base, 422, code, *phrases)


@pytest.mark.parametrize(("change", "code", "phrases"), DATA_CASES)
def test_bad_data_is_rejected(
    client: httpx.Client,
    service: Service,
    base: Spec,
    change: Callable[[Spec], None],
    code: str,
    phrases: list[str],
) -> None:
    change(base)
    submit_rejected(client, service, base, 422, code, *phrases)


@pytest.mark.parametrize(("change", "code", "phrases"), FIT_CASES)
def test_bad_fit_is_rejected(
    client: httpx.Client,
    service: Service,
    base: Spec,
    change: Callable[[Spec], None],
    code: str,
    phrases: list[str],
) -> None:
    change(base)
    submit_rejected(client, service, base, 422, code, *phrases)


def test_body_over_the_request_limit_is_413(client: httpx.Client, service: Service) -> None:
    spec = tiny_job()
    rows = 800_000  # about 35 MB of inline JSON, over the 32 MiB default
    spec["data"]["train"] = {"x": [[0.123456] * 4] * rows, "y": [1] * rows}
    body = json.dumps(spec).encode()
    assert len(body) > 32 * 1024**2
    submit_rejected(
        client, service, body, 413, "upload_too_large", "33554432", "REMOTEFIT_MAX_REQUEST_BYTES"
    )


def test_streamed_body_over_the_request_limit_is_413(
    client: httpx.Client, service: Service
) -> None:
    # Without Content-Length the limit is found while the body streams in, inside FastAPI's
    # body reading, which must not turn it into a 400.
    def chunks() -> Any:
        yield b'{"name": "' + b"x" * (33 * 1024**2) + b'"}'

    before = snapshot(client, service)
    response = client.post(
        "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_rejected(response, 413, "upload_too_large", "REMOTEFIT_MAX_REQUEST_BYTES")
    assert snapshot(client, service) == before


@pytest.mark.parametrize(
    ("make_body", "phrases"),
    [
        pytest.param(
            lambda: ('{"model": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(),
            ["nested too deeply"],
            id="nested-lists-as-the-body",
        ),
        pytest.param(
            lambda: json.dumps({**tiny_job(), "model": "[" * 100_000 + "]" * 100_000}).encode(),
            ["nested too deeply"],
            id="nested-lists-in-the-model-string",
        ),
        pytest.param(
            lambda: json.dumps(
                {**tiny_job(), "model": {"class_name": "Sequential", "config": nested(200)}}
            ).encode(),
            ["nested more than 64 levels", "REMOTEFIT_MAX_JSON_DEPTH"],
            id="model-config-200-levels-deep",
        ),
    ],
)
def test_deeply_nested_json_is_422(
    client: httpx.Client, service: Service, make_body: Callable[[], bytes], phrases: list[str]
) -> None:
    submit_rejected(client, service, make_body(), 422, "limit_exceeded", *phrases)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"layers": [value]}
    return value


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/jobs/{UNKNOWN_ID}"),
        ("POST", f"/v1/jobs/{UNKNOWN_ID}/cancel"),
        ("DELETE", f"/v1/jobs/{UNKNOWN_ID}"),
        ("GET", f"/v1/jobs/{UNKNOWN_ID}/weights"),
        ("GET", f"/v1/jobs/{UNKNOWN_ID}/spec"),
        ("GET", "/v1/jobs/not-an-id"),
    ],
    ids=["get", "cancel", "delete", "weights", "spec", "malformed-id"],
)
def test_unknown_job_is_404(client: httpx.Client, service: Service, method: str, path: str) -> None:
    before = snapshot(client, service)
    response = client.request(method, path)
    assert_rejected(response, 404, "job_not_found", repr(path.split("/")[3]), "GET /v1/jobs")
    assert snapshot(client, service) == before


def test_unfinished_job_has_no_weights_yet(
    client: httpx.Client, dataset_id: str, base: Spec
) -> None:
    base["fit"].update(epochs=1000, batch_size=1)  # minutes of work, cancelled below
    job = client.post("/v1/jobs", json=base).json()
    try:
        response = client.get(f"/v1/jobs/{job['id']}/weights")
        status = client.get(f"/v1/jobs/{job['id']}").json()["status"]
        assert status in ("queued", "running")
        assert_rejected(response, 409, "conflict", f"Job {job['id']} is", "once it has finished")
    finally:
        client.post(f"/v1/jobs/{job['id']}/cancel")
    assert wait_for_job(client, job["id"], timeout=60)["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204


def test_service_still_works_after_bad_requests(client: httpx.Client, service: Service) -> None:
    assert client.get("/readyz").status_code == 200
    spec = tiny_job()
    # Keyed by the output layer's name, as the rejected cases' messages suggest.
    spec["compile"].update(loss={"output": "binary_crossentropy"}, metrics={"output": ["accuracy"]})
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    before = snapshot(client, service)
    assert_rejected(
        client.post(f"/v1/jobs/{job['id']}/cancel"),
        409,
        "conflict",
        "already finished (succeeded)",
        "only queued or running jobs",
    )
    assert snapshot(client, service) == before
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
