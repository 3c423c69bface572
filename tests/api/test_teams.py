"""Teams on a real embedded service: users and tokens from the CLI, isolation on every route."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import seed_job, small_npz, wait_for_job
from tests.services import CLI, Service, distributed, drop_postgres_database, embedded

MISSING = "0" * 32


def cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **service.env}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def new_token(service: Service, *args: str) -> str:
    done = cli(service, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def as_user(service: Service, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=service.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )


RATE = {"REMOTEFIT_RATE_PER_SECOND": "20", "REMOTEFIT_RATE_BURST": "100"}


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def teams(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A service with users ana (admin) and bob: SQLite, or PostgreSQL + Redis."""
    folder = tmp_path_factory.mktemp("teams")
    database = None
    if request.param == "embedded":
        service = embedded(folder, "teams", **RATE)
    else:
        service, database = distributed(folder, "teams", **RATE)
    service.start()
    data = small_npz(folder / "small.npz")
    with httpx.Client(base_url=service.url) as open_client:
        # Before any user: open on loopback, as ever; this job is adopted by the first admin.
        assert open_client.get("/v1/jobs").status_code == 200
        with open(data, "rb") as handle:
            early = open_client.post("/v1/datasets", files={"file": ("early.npz", handle)})
        assert early.status_code == 201
    ana = new_token(service, "users", "add", "ana", "--admin")
    # The open server closes with its first user, from the next request, though it just said it
    # had none (and would not ask again for a second, but for the user's announcement).
    assert httpx.get(f"{service.url}/v1/jobs").status_code == 401
    bob = new_token(service, "users", "add", "bob")
    yield {"service": service, "ana": ana, "bob": bob, "data": data, "early": early.json()["id"]}
    service.stop()
    if database is not None:
        drop_postgres_database(database)


def _upload(client: httpx.Client, path: Path) -> str:
    with open(path, "rb") as handle:
        response = client.post("/v1/datasets", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_token_is_needed_once_a_user_exists(teams: dict[str, Any]) -> None:
    service = teams["service"]
    refused = httpx.get(f"{service.url}/v1/jobs")
    assert refused.status_code == 401
    assert "remotefit tokens create" in refused.json()["detail"]["message"]
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    wrong = httpx.get(f"{service.url}/v1/jobs", headers={"Authorization": "Bearer rf_nope"})
    assert wrong.status_code == 401


def test_me_shows_scopes_and_each_quota_with_its_use(teams: dict[str, Any]) -> None:
    with as_user(teams["service"], teams["bob"]) as bob:
        me = bob.get("/v1/me").json()
    assert me["name"] == "bob" and me["admin"] is False
    assert "admin" not in me["scopes"] and "jobs:write" in me["scopes"]
    assert set(me["quotas"]) == {"max_running", "max_queued", "max_storage", "max_job_seconds"}
    assert me["quotas"]["max_queued"] == {"limit": 100, "used": 0}


def test_the_first_admin_adopts_what_was_made_before_users(teams: dict[str, Any]) -> None:
    service = teams["service"]
    with as_user(service, teams["ana"]) as ana, as_user(service, teams["bob"]) as bob:
        assert [d["id"] for d in ana.get("/v1/datasets").json()["items"]] == [teams["early"]]
        assert bob.get(f"/v1/datasets/{teams['early']}").status_code == 404


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    bodies = {
        ("POST", "/predict"): {"x": [[0.0] * 20]},
        ("PATCH", "/v1/datasets/"): {"shared": True},
    }
    body = next((b for (m, part), b in bodies.items() if m == method and part in path), None)
    return client.request(method, path, json=body)


def test_another_users_object_answers_exactly_as_a_missing_one(teams: dict[str, Any]) -> None:
    """Walks every route with an id in its path, every verb: B gets A's as a missing id."""
    service = teams["service"]
    with as_user(service, teams["ana"]) as ana, as_user(service, teams["bob"]) as bob:
        dataset = _upload(ana, teams["data"])
        job = ana.post("/v1/jobs", json=seed_job(dataset, epochs=1, batch_size=32)).json()
        assert wait_for_job(ana, job["id"])["status"] == "succeeded"
        ids = {"job_id": job["id"], "dataset_id": dataset}
        paths = ana.get("/openapi.json").json()["paths"]
        checked = 0
        for template, operations in paths.items():
            param = next((name for name in ids if "{" + name + "}" in template), None)
            if param is None:
                continue
            for method in operations:
                theirs = _call(bob, method.upper(), template.replace("{" + param + "}", ids[param]))
                missing = _call(bob, method.upper(), template.replace("{" + param + "}", MISSING))
                assert theirs.status_code == missing.status_code == 404, (method, template)
                assert theirs.text.replace(ids[param], MISSING) == missing.text, (method, template)
                checked += 1
        assert checked >= 11
        # The trained job's artifacts count in its owner's storage.
        stored = ana.get("/v1/me").json()["quotas"]["max_storage"]["used"]
        datasets = sum(d["size_bytes"] for d in ana.get("/v1/datasets").json()["items"])
        assert stored > datasets
        # Nothing happened to them, and the owner still has them.
        assert ana.get(f"/v1/jobs/{job['id']}").status_code == 200
        assert ana.get(f"/v1/datasets/{dataset}").json()["shared"] is False
        # Lists are one's own; an admin's ?all=true sees everyone's.
        assert bob.get("/v1/jobs").json()["items"] == []
        assert bob.get("/v1/jobs?all=true").json()["items"] == []
        assert bob.get("/v1/datasets").json()["items"] == []
        assert job["id"] in [j["id"] for j in ana.get("/v1/jobs?all=true").json()["items"]]
        # A job naming another's dataset or initial weights is refused as if they did not exist.
        for spec in (
            seed_job(dataset, epochs=1),
            {**seed_job(MISSING, epochs=1)},
        ):
            refused = bob.post("/v1/jobs", json=spec)
            assert refused.status_code == 422
        theirs = bob.post("/v1/jobs", json=seed_job(dataset, epochs=1)).json()
        missing = bob.post("/v1/jobs", json=seed_job(MISSING, epochs=1)).json()
        assert str(theirs).replace(dataset, MISSING) == str(missing)
        own = _upload(bob, teams["data"])
        weights = {**seed_job(own, epochs=1), "initial_weights": {"job": job["id"]}}
        gone = {**seed_job(own, epochs=1), "initial_weights": {"job": MISSING}}
        theirs = bob.post("/v1/jobs", json=weights)
        missing = bob.post("/v1/jobs", json=gone)
        assert theirs.status_code == missing.status_code == 422
        assert theirs.text.replace(job["id"], MISSING) == missing.text


def test_a_shared_dataset_is_readable_never_writable(teams: dict[str, Any]) -> None:
    service = teams["service"]
    with as_user(service, teams["ana"]) as ana, as_user(service, teams["bob"]) as bob:
        dataset = _upload(ana, teams["data"])
        assert bob.patch(f"/v1/datasets/{dataset}", json={"shared": True}).status_code == 404
        assert ana.patch(f"/v1/datasets/{dataset}", json={"shared": True}).json()["shared"]
        assert bob.get(f"/v1/datasets/{dataset}").status_code == 200
        assert bob.delete(f"/v1/datasets/{dataset}").status_code == 404
        assert bob.patch(f"/v1/datasets/{dataset}", json={"shared": False}).status_code == 404
        assert dataset not in [d["id"] for d in bob.get("/v1/datasets").json()["items"]]
        job = bob.post("/v1/jobs", json=seed_job(dataset, epochs=1, batch_size=32))
        assert job.status_code == 201, job.text
        bob.post(f"/v1/jobs/{job.json()['id']}/cancel")
    # Its owner cannot delete it while another's job needs it, and is not shown that job's id.
    with as_user(service, new_token(service, "users", "add", "fay")) as fay:
        with as_user(service, teams["bob"]) as bob:
            own = _upload(bob, teams["data"])
            assert bob.patch(f"/v1/datasets/{own}", json={"shared": True}).status_code == 200
            job = fay.post("/v1/jobs", json=seed_job(own, epochs=1000, batch_size=1)).json()
            refused = bob.delete(f"/v1/datasets/{own}")
            fay.post(f"/v1/jobs/{job['id']}/cancel")
        assert refused.status_code == 409
        assert job["id"] not in refused.text and "1 of other users" in refused.text


def test_scopes_revocation_expiry_and_disabling(teams: dict[str, Any]) -> None:
    service = teams["service"]
    reader = new_token(service, "tokens", "create", "--user", "bob", "--scopes", "jobs:read")
    with as_user(service, reader) as client:
        assert client.get("/v1/jobs").status_code == 200
        refused = client.post("/v1/jobs", json={})
        assert refused.status_code == 403 and "jobs:write" in refused.json()["detail"]["message"]
        assert client.get("/v1/datasets").status_code == 403
        assert client.get("/v1/audit").status_code == 403
        # A token never holds more than its creator's.
        wider = client.post("/v1/tokens", json={"scopes": ["jobs:write"]})
        assert wider.status_code == 403
    assert cli(service, "tokens", "create", "--user", "bob", "--scopes", "admin").returncode == 2
    with as_user(service, teams["bob"]) as bob:
        made = bob.post("/v1/tokens", json={"scopes": ["jobs:read"], "label": "script"}).json()
        assert made["token"].startswith("rf_") and len(made["token"]) >= 3 + 43
        assert made["id"] in [t["id"] for t in bob.get("/v1/tokens").json()]
        with as_user(service, made["token"]) as script:
            assert script.get("/v1/me").json()["scopes"] == ["jobs:read"]
            assert bob.delete(f"/v1/tokens/{made['id']}").status_code == 204
            assert script.get("/v1/me").status_code == 401
        # Revoked by the CLI, another process, while the API remembers the token as valid.
        made = bob.post("/v1/tokens", json={"scopes": ["jobs:read"]}).json()
        with as_user(service, made["token"]) as script:
            assert script.get("/v1/me").status_code == 200
            assert cli(service, "tokens", "revoke", made["id"]).returncode == 0
            assert script.get("/v1/me").status_code == 401
    short = new_token(service, "tokens", "create", "--user", "bob", "--expires-days", "0.00002")
    with as_user(service, short) as client:
        assert client.get("/v1/me").status_code == 200  # remembered, but not past its expiry
        time.sleep(2)
        assert client.get("/v1/me").status_code == 401
    carl = new_token(service, "users", "add", "carl")
    with as_user(service, carl) as client:
        assert client.get("/v1/me").status_code == 200
        assert cli(service, "users", "disable", "carl").returncode == 0
        assert client.get("/v1/me").status_code == 401


def test_quotas_refuse_with_429_and_create_nothing(teams: dict[str, Any]) -> None:
    service = teams["service"]
    dave = new_token(service, "users", "add", "dave", "--max-queued", "0", "--max-storage", "10")
    with as_user(service, dave) as client:
        with open(teams["data"], "rb") as handle:
            upload = client.post("/v1/datasets", files={"file": ("d.npz", handle)})
        assert upload.status_code == 429
        detail = upload.json()["detail"]
        assert detail["code"] == "quota_exceeded" and detail["quota"] == "max_storage"
        assert detail["limit"] == 10 and detail["used"] == 0
        assert client.get("/v1/datasets").json()["items"] == []
        spec = seed_job(MISSING, epochs=1)
        spec["data"] = {"train": {"x": [[0.0] * 20] * 4, "y": [[1]] * 4}}
        refused = client.post("/v1/jobs", json=spec)
        assert refused.status_code == 429, refused.text
        assert refused.json()["detail"]["quota"] == "max_queued"
        assert client.get("/v1/jobs").json()["total"] == 0
    assert cli(service, "users", "set", "dave", "--max-queued", "5").returncode == 0
    with as_user(service, dave) as client:
        assert client.get("/v1/me").json()["quotas"]["max_queued"]["limit"] == 5


def test_a_user_over_the_request_rate_is_told_when_to_retry(teams: dict[str, Any]) -> None:
    service = teams["service"]
    with as_user(service, new_token(service, "users", "add", "eve")) as eve:
        answers = [eve.get("/v1/me") for _ in range(200)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["detail"]["code"] == "rate_limited"
    assert int(limited[0].headers["retry-after"]) >= 1
    with as_user(service, teams["ana"]) as ana:
        assert ana.get("/v1/me").status_code == 200  # one user's rate is not another's


def test_audit_log_for_admins(teams: dict[str, Any]) -> None:
    service = teams["service"]
    with as_user(service, teams["ana"]) as ana, as_user(service, teams["bob"]) as bob:
        dataset = _upload(bob, teams["data"])
        assert bob.delete(f"/v1/datasets/{dataset}").status_code == 204
        assert bob.get("/v1/audit").status_code == 403
        entries = ana.get("/v1/audit").json()["items"]
    actions = {(e["actor"], e["action"], e["target"]) for e in entries}
    assert ("bob", "dataset.delete", dataset) in actions
    assert ("cli", "user.add", "bob") in actions
    assert ("cli", "user.set", "dave") in actions  # a quota change (test_quotas_...)
    assert ("cli", "user.disable", "carl") in actions
    assert any(action == "token.revoke" for _, action, _ in actions)


def test_remotefit_me(teams: dict[str, Any]) -> None:
    service = teams["service"]
    env = {**os.environ, "REMOTEFIT_URL": service.url, "REMOTEFIT_TOKEN": teams["bob"]}
    done = subprocess.run([*CLI, "me"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bob\n")
    assert "max_queued: " in done.stdout and " of 100" in done.stdout


def test_no_token_in_clear_in_the_database_the_data_folder_or_the_logs(
    teams: dict[str, Any],
) -> None:
    service = teams["service"]
    secrets = [teams["ana"].encode(), teams["bob"].encode()]
    files = [p for p in service.folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        assert not any(secret in content for secret in secrets), path
    url = service.env.get("REMOTEFIT_DATABASE_URL")
    if url:  # PostgreSQL: every row of every table, as text
        import psycopg

        with psycopg.connect(url) as connection:
            tables = [
                r[0]
                for r in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            for table in tables:
                dump = str(connection.execute(f'SELECT t::text FROM "{table}" t').fetchall())
                assert not any(secret.decode() in dump for secret in secrets), table
    key = Path(service.env["REMOTEFIT_DATA_DIR"]) / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_an_open_server_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    env = {**os.environ, "REMOTEFIT_DATA_DIR": str(tmp_path / "var"), "REMOTEFIT_HOST": "0.0.0.0"}
    env["REMOTEFIT_PORT"] = "1"  # never reached: it refuses before listening
    done = subprocess.run([*CLI, "api"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "remotefit users add NAME --admin" in done.stderr
    assert "REMOTEFIT_ALLOW_ANONYMOUS=true" in done.stderr
