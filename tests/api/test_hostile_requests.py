"""Requests that used to end in a 500 (or a stored value one stack refuses) get a quick 4xx.

Each class of the issue ("500s that must be 4xx") has several members here; every answer is a
4xx within a second, with a message and no traceback, nothing is created, and the service is
healthy afterwards. Runs on the embedded default and on Redis + PostgreSQL.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import httpx
import numpy as np
import pytest

from tests.assertions import snapshot
from tests.conftest import wait_for_job
from tests.services import Service

Spec = dict[str, Any]
Request = tuple[str, str, dict[str, Any]]  # method, path ({job} and {dataset} filled in), httpx
JSON = {"content-type": "application/json"}


def _model() -> dict[str, Any]:
    import keras

    model = keras.Sequential([keras.Input((3,), name="inp"), keras.layers.Dense(1, name="out")])
    parsed: dict[str, Any] = json.loads(model.to_json())
    return parsed


def tiny_job(**changes: Any) -> Spec:
    """A job on four inline samples of three features; ``changes`` replace top-level keys."""
    spec: Spec = {
        "model": _model(),
        "compile": {"loss": "mse"},
        "data": {"train": {"x": [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]], "y": [[1]] * 4}},
        "fit": {"epochs": 1},
    }
    return {**spec, **changes}


def raw(spec: Spec, old: str, new: str) -> dict[str, Any]:
    """A JSON body as text, with ``old`` replaced by ``new`` (what json.dumps cannot write)."""
    text = json.dumps(spec).replace(old, new, 1)
    assert new in text
    return {"content": text.encode(), "headers": JSON}


def _npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


BOUNDARY = "hostile-boundary"


def form(filename: str) -> bytes:
    """A multipart body as curl -F sends it: one CSV file named ``filename``."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        f"\r\n\r\na,b\n1,2\n3,45678\r\n--{BOUNDARY}--\r\n"
    ).encode()


def upload_form(content: bytes) -> Request:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return ("POST", "/v1/datasets", {"content": content, "headers": headers})


@pytest.fixture(scope="module")
def made() -> dict[str, dict[str, str]]:
    """Per stack: a trained job, a diverged job, and a dataset, made once."""
    return {}


@pytest.fixture
def ids(service: Service, client: httpx.Client, made: dict[str, dict[str, str]]) -> dict[str, str]:
    if service.name not in made:
        trained = client.post("/v1/jobs", json=tiny_job()).json()["id"]
        sgd = {"class_name": "SGD", "config": {"learning_rate": 1e30}}
        diverged = client.post(
            "/v1/jobs",
            json=tiny_job(
                compile={"loss": "mse", "optimizer": sgd},
                data={"train": {"x": [[1e10] * 3] * 4, "y": [[1]] * 4}},
                fit={"epochs": 2},
            ),
        ).json()["id"]
        files = {"file": ("d.npz", _npz(x=np.ones((3, 3)), y=np.ones((3, 1)), s=np.array(5.0)))}
        dataset = client.post("/v1/datasets", files=files).json()["id"]
        assert wait_for_job(client, trained)["status"] == "succeeded"
        assert wait_for_job(client, diverged)["status"] == "succeeded"
        made[service.name] = {"job": trained, "diverged": diverged, "dataset": dataset}
    return made[service.name]


def _send(client: httpx.Client, request: Request, ids: dict[str, str]) -> httpx.Response:
    method, path, options = request
    for _ in range(2):  # a refused request is harmless to repeat: once for a scheduling stall
        started = time.monotonic()
        response = client.request(method, path.format(**ids), **options)
        if time.monotonic() - started < 1.0:
            return response
    raise AssertionError(f"{method} {path} took over a second, twice")


def _assert_all_refused(
    client: httpx.Client, service: Service, ids: dict[str, str], corpus: dict[str, Request]
) -> None:
    before = snapshot(client, service)
    for label, request in corpus.items():
        response = _send(client, request, ids)
        assert 400 <= response.status_code < 500, (label, response.status_code, response.text)
        assert "Traceback" not in response.text, label
        detail = response.json()["detail"]
        assert detail["code"] and len(detail["message"]) > 40, (label, detail)
    assert snapshot(client, service) == before
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


PREDICT = "/v1/jobs/{job}/predict"


def predict_corpus(ids: dict[str, str]) -> dict[str, Request]:
    """Predict with x the model cannot take: empty, 0-d, the wrong shape, not an array name."""
    predict = PREDICT

    def inline(x: Any) -> Request:
        return ("POST", predict, {"json": {"x": x}})

    def named(x: Any) -> Request:
        return ("POST", predict, {"json": {"dataset": ids["dataset"], "x": x}})

    corpus = {
        "empty": inline([]),
        "empty rows": inline([[]]),
        "0-d": inline(5),
        "too few features": inline([[1, 2]]),
        "an axis too many": inline([[[1, 2, 3]]]),
        "flat": inline([1, 2, 3]),
        "strings": inline(["a"]),
        "ragged": inline([[1, 2, 3], [1]]),
        "list where a name is expected": named({"inp": ["x"]}),
        "object where a name is expected": named({"inp": {"x": 1}}),
        "columns of numbers": named({"columns": [1, 2]}),
        "a 0-d array": named("s"),
        "the wrong array": named("y"),
    }
    return corpus


def test_predict_with_x_the_model_cannot_take(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    _assert_all_refused(client, service, ids, predict_corpus(ids))
    response = client.post(PREDICT.format(**ids), json={"dataset": ids["dataset"], "x": "x"})
    assert response.status_code == 200, response.text


def naming_corpus(ids: dict[str, str]) -> dict[str, Request]:
    """Jobs that name arrays badly: a list or object where a name is expected, 0-d arrays."""

    def train(**split: Any) -> Request:
        return ("POST", "/v1/jobs", {"json": tiny_job(data={"train": split})})

    dataset = ids["dataset"]
    corpus = {
        "list in an object": train(dataset=dataset, x={"inp": ["x"]}, y="y"),
        "number as a name": train(dataset=dataset, x=7, y="y"),
        "0-d y by name": train(dataset=dataset, x="x", y="s"),
        "0-d y inline": train(x=[[1, 2, 3]], y=5),
        "0-d x inline": train(x=3, y=[[1]]),
        "columns of lists": train(dataset=dataset, x={"columns": [["x"]]}, y="y"),
    }
    return corpus


def test_jobs_naming_arrays_badly(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    _assert_all_refused(client, service, ids, naming_corpus(ids))


def non_finite_corpus() -> dict[str, Request]:
    """NaN and Infinity in request JSON, and weights that diverged to NaN asked for as JSON."""
    weights = tiny_job(compile={"loss": "mse", "loss_weights": [0.5]})
    classes = tiny_job(fit={"epochs": 1, "class_weight": {"0": 0.5}})
    corpus = {
        "NaN in x": ("POST", "/v1/jobs", raw(tiny_job(), "[1, 2, 3]", "[NaN, 2, 3]")),
        "Infinity in y": ("POST", "/v1/jobs", raw(tiny_job(), "[[1], [1]", "[[Infinity], [1]")),
        "-Infinity in loss_weights": ("POST", "/v1/jobs", raw(weights, "0.5", "-Infinity")),
        "NaN in class_weight": ("POST", "/v1/jobs", raw(classes, "0.5", "NaN")),
        "NaN in the model": ("POST", "/v1/jobs", raw(tiny_job(), '"units": 1', '"units": NaN')),
        "NaN to predict": (
            "POST",
            "/v1/jobs/{job}/predict",
            {"content": b'{"x": [[NaN, 1, 2]]}', "headers": JSON},
        ),
        "Infinity to inspect": (
            "POST",
            "/v1/models/inspect",
            raw({"model": _model()}, '"units": 1', '"units": Infinity'),
        ),
        "weights that diverged, as JSON": ("GET", "/v1/jobs/{diverged}/weights?format=json", {}),
    }
    return corpus


def test_non_finite_numbers_in_request_json(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    _assert_all_refused(client, service, ids, non_finite_corpus())
    # A string that merely spells them is fine.
    named = client.post("/v1/jobs", json=tiny_job(name="NaN Infinity"))
    assert named.status_code == 201, named.text
    assert client.get(f"/v1/jobs/{ids['diverged']}/weights").status_code == 200


EVENTS = "/v1/jobs/{job}/events"


def range_corpus() -> dict[str, Request]:
    """Offsets, limits and event ids out of range or not ASCII digits."""
    events = EVENTS
    corpus = {
        "jobs offset past 64 bits": ("GET", "/v1/jobs?offset=9223372036854775808", {}),
        "jobs offset huge": ("GET", "/v1/jobs?offset=" + "9" * 40, {}),
        "datasets offset past 64 bits": ("GET", "/v1/datasets?offset=9223372036854775808", {}),
        "jobs limit huge": ("GET", "/v1/jobs?limit=9223372036854775808", {}),
        "negative offset": ("GET", "/v1/datasets?offset=-1", {}),
        "after past 64 bits": ("GET", events + "?after=9223372036854775808", {}),
        "Last-Event-ID huge": ("GET", events, {"headers": {"Last-Event-ID": "9" * 30}}),
        "Last-Event-ID superscript": (
            "GET",
            events,
            {"headers": {"Last-Event-ID": "²".encode("latin-1")}},
        ),
        "Last-Event-ID words": ("GET", events, {"headers": {"Last-Event-ID": "last"}}),
    }
    return corpus


def test_numbers_out_of_range_in_queries_and_headers(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    _assert_all_refused(client, service, ids, range_corpus())
    resumed = client.get(EVENTS.format(**ids), headers={"Last-Event-ID": "1"})
    assert resumed.status_code == 200 and "event: status" in resumed.text
    # Past PostgreSQL's 32-bit event ids, in range for the API: nothing after it, and the
    # stream of the finished job ends whole (its query failed once the stream had begun).
    for beyond in ({"params": {"after": 2**40}}, {"headers": {"Last-Event-ID": str(2**40)}}):
        response = client.get(EVENTS.format(**ids), **beyond)  # type: ignore[arg-type]
        assert response.status_code == 200 and "event:" not in response.text, response.text


def nul_corpus() -> dict[str, Request]:
    """NUL characters in names, ids and file names (PostgreSQL refuses them)."""
    corpus = {
        "job name": ("POST", "/v1/jobs", {"json": tiny_job(name="a\x00b")}),
        "array name": ("POST", "/v1/jobs/{job}/predict", {"json": {"dataset": "x", "x": "a\x00"}}),
        "dataset id in a job": (
            "POST",
            "/v1/jobs",
            {"json": tiny_job(data={"train": {"dataset": "d\x00", "x": "x", "y": "y"}})},
        ),
        "job id in the path": ("GET", "/v1/jobs/a%00b", {}),
        "dataset id in the path": ("DELETE", "/v1/datasets/a%00b", {}),
        "filename in the query": (
            "POST",
            "/v1/datasets?filename=a%00.csv",
            {"content": b"a\n1\n", "headers": {"content-type": "application/octet-stream"}},
        ),
        "filename in a form": upload_form(form("a\x00.csv")),
        "a key of the model": ("POST", "/v1/models/inspect", {"json": {"model": {"a\x00": 1}}}),
    }
    return corpus


def test_nul_characters_anywhere(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    _assert_all_refused(client, service, ids, nul_corpus())


def multipart_corpus() -> dict[str, Request]:
    """Multipart bodies cut before their closing boundary, or running on after it."""
    body = form("a.csv")
    post = upload_form
    corpus = {
        "cut inside the file": post(body[: body.index(b"45678") + 1]),
        "cut inside the closing delimiter": post(body[: body.index(b"--\r\n", 20)]),
        "cut before any part": post(body[:10]),
        "bytes after the end": post(body + b"garbage"),
        "a second part after the end": post(body + body),
    }
    return corpus


def test_multipart_bodies_cut_short_or_running_on(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    corpus = multipart_corpus()
    _assert_all_refused(client, service, ids, corpus)
    for label, request in corpus.items():
        assert _send(client, request, ids).status_code == 400, label
    whole = _send(client, upload_form(form("a.csv")), ids)
    assert whole.status_code == 201, whole.text
    assert client.delete(f"/v1/datasets/{whole.json()['id']}").status_code == 204
