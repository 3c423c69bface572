"""Every bad sweep gets a 422 naming its parameter and creates nothing; sweeps are owned.

The refusals run on the embedded default and on Redis + PostgreSQL; ownership on an embedded
service with two users.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_teams import as_user, new_token
from tests.assertions import assert_rejected, snapshot
from tests.conftest import seed_model, upload
from tests.services import Service, embedded

Spec = dict[str, Any]
UNITS = "/model/config/layers/@hidden/config/units"


def seed_json() -> Spec:
    model = json.loads(seed_model().to_json())
    names = iter(["hidden", "drop", "hidden_2", "drop_2", "out"])
    for layer in model["config"]["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"]["name"] = next(names)
    return dict(model)


def sweep_body(dataset: str) -> Spec:
    return {
        "name": "seed-width",
        "base": {
            "model": seed_json(),
            "compile": {
                "loss": "binary_crossentropy",
                "optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 0.001}},
                "metrics": ["accuracy"],
            },
            "data": {"train": {"dataset": dataset, "x": "x_train", "y": "y_train"}},
            "fit": {"epochs": 1, "batch_size": 128, "validation_split": 0.2},
        },
        "parameters": {
            "units": {"target": UNITS, "int": {"low": 8, "high": 64, "log": True}},
            "rate": {
                "target": "/model/config/layers/@drop/config/rate",
                "float": {"low": 0.0, "high": 0.5},
            },
            "batch": {"target": "/fit/batch_size", "categorical": [32, 64, 128]},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "sampler": {"type": "random", "seed": 1},
        "budget": {"max_trials": 2, "max_concurrent_trials": 1},
    }


@pytest.fixture
def dataset(client: httpx.Client, seed_npz: Path) -> str:
    dataset_id: str = upload(client, seed_npz)["id"]
    return dataset_id


def sweeps_total(client: httpx.Client) -> int:
    return int(client.get("/v1/sweeps").json()["total"])


def with_change(body: Spec, path: list[Any], value: Any) -> Spec:
    changed = copy.deepcopy(body)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


BAD = [
    ("a target that does not resolve", ["parameters", "units", "target"],
     "/model/config/layers/@hiden/config/units", "invalid_parameter",
     ["parameters.units", "'hiden'", "the names there"]),
    ("a target at class_name", ["parameters", "units"],
     {"target": "/model/config/layers/@hidden/class_name", "categorical": ["Lambda"]},
     "invalid_parameter", ["parameters.units", "class_name"]),
    ("a Lambda smuggled in a choice", ["parameters", "units"],
     {"target": "/model/config/layers/@hidden/config",
      "categorical": [{"units": 4, "activation": {"class_name": "Lambda", "config": {}}}]},
     "invalid_parameter", ["parameters.units", "class_name", "Lambda"]),
    ("a float where an integer is", ["parameters", "units"],
     {"target": UNITS, "float": {"low": 1.0, "high": 2.0}}, "invalid_parameter",
     ["parameters.units", "real number"]),
    ("two kinds at once", ["parameters", "units", "float"], {"low": 1, "high": 2},
     "invalid_request", ["Give exactly one of"]),
    ("a value of another type", ["parameters", "batch", "categorical"], [32, "64"],
     "invalid_parameter", ["parameters.batch", "'64'", "type"]),
    ("units too many at the highs", ["parameters", "units", "int"],
     {"low": 8, "high": 10**8, "log": True}, "invalid_parameter",
     ["parameters.units", "all parameters at their highs"]),
    ("a batch size a job may not have", ["parameters", "batch", "categorical"], [0, 32],
     "invalid_parameter", ["parameters.batch", "batch_size"]),
    ("an objective Keras will not log", ["objective", "metric"], "val_auc",
     "invalid_spec", ["val_auc", "val_accuracy"]),
    ("val_ without validation data", ["base", "fit", "validation_split"], 0.0,
     "invalid_spec", ["no validation data"]),
    ("a grid over a continuous range", ["sampler", "type"], "grid", "invalid_parameter",
     ["parameters.rate", "step"]),
    ("a log range from zero", ["parameters", "rate", "float"], {"low": 0.0, "high": 1, "log": True},
     "invalid_request", ["log"]),
    ("an unknown pruner", ["pruner"], {"type": "hyperband"}, "invalid_request", ["pruner"]),
    ("a base that is no job", ["base", "data", "train", "x"], "x_nope", "dataset_mismatch",
     ["x_nope"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "code", "phrases"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_each_bad_sweep_is_refused_and_creates_nothing(
    service: Service,
    client: httpx.Client,
    dataset: str,
    path: list[Any],
    value: Any,
    code: str,
    phrases: list[str],
) -> None:
    body = with_change(sweep_body(dataset), path, value)
    before, sweeps = snapshot(client, service), sweeps_total(client)
    response = client.post("/v1/sweeps", json=body)
    assert_rejected(response, 422, code, *phrases)
    assert snapshot(client, service) == before
    assert sweeps_total(client) == sweeps


def test_a_good_sweep_is_queued_and_shown(client: httpx.Client, dataset: str) -> None:
    response = client.post("/v1/sweeps", json=sweep_body(dataset))
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["status"] == "queued" and sweep["trials"] == [] and sweep["best"] is None
    assert sweep["links"]["events"] == f"/v1/sweeps/{sweep['id']}/events"
    shown = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert shown["parameters"]["units"]["target"] == UNITS
    page = client.get("/v1/sweeps", params={"limit": 1, "offset": 0}).json()
    assert page["limit"] == 1 and len(page["items"]) == 1 and page["total"] >= 1
    in_use = client.delete(f"/v1/datasets/{dataset}")
    assert in_use.status_code == 409 and "unfinished sweep" in in_use.text
    client.post(f"/v1/sweeps/{sweep['id']}/cancel")


@pytest.fixture(scope="module")
def two_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sweep-owners")
    service = embedded(folder, "sweep-owners")
    service.start()
    ana = new_token(service, "users", "add", "ana", "--admin")
    bob = new_token(service, "users", "add", "bob")
    yield {"service": service, "ana": ana, "bob": bob}
    service.stop()


def test_another_users_sweep_is_a_404_as_a_missing_one(
    two_users: dict[str, Any], seed_npz: Path
) -> None:
    service = two_users["service"]
    with as_user(service, two_users["bob"]) as bob, as_user(service, two_users["ana"]) as ana:
        body = sweep_body(upload(bob, seed_npz)["id"])
        body["base"]["fit"]["epochs"] = 1
        created = bob.post("/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep_id = created.json()["id"]
        assert ana.get("/v1/sweeps").json()["total"] == 0, "lists show one's own"
        assert ana.get("/v1/sweeps", params={"all": "true"}).json()["total"] == 1
        with httpx.Client(base_url=service.url) as nobody:
            assert nobody.get("/v1/sweeps").status_code == 401
        carol = new_token(service, "users", "add", "carol")
        with as_user(service, carol) as other:
            calls = (("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/events"))
            for method, suffix in calls:
                mine = other.request(method, f"/v1/sweeps/{sweep_id}{suffix}")
                missing = other.request(method, f"/v1/sweeps/{'0' * 32}{suffix}")
                assert mine.status_code == missing.status_code == 404
                assert mine.json()["detail"]["code"] == "sweep_not_found"
        # A trial is a job of the sweep's owner.
        trial = bob.get(f"/v1/sweeps/{sweep_id}").json()["trials"]
        bob.post(f"/v1/sweeps/{sweep_id}/cancel")
        if trial:
            job = bob.get(f"/v1/jobs/{trial[0]['job']}").json()
            assert job["sweep"] == sweep_id


def test_the_dashboard_lists_sweeps_and_shows_one_with_its_trials(
    embedded_service: Service, seed_npz: Path
) -> None:
    with embedded_service.client() as client:
        body = sweep_body(upload(client, seed_npz)["id"])
        sweep_id = client.post("/v1/sweeps", json=body).json()["id"]
        listing = client.get("/sweeps")
        assert listing.status_code == 200 and f'href="/sweeps/{sweep_id}"' in listing.text
        page = client.get(f"/sweeps/{sweep_id}")
        assert page.status_code == 200
        assert '<table id="trials"' in page.text and "/static/sweep.js" in page.text
        assert '<div id="curves"' in page.text and "val_accuracy" in page.text
        assert client.get("/static/sweep.js").status_code == 200
        assert client.get(f"/sweeps/{'0' * 32}").status_code == 404
        client.post(f"/v1/sweeps/{sweep_id}/cancel")
