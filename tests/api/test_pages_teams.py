"""The dashboard with users: a login takes any user's token, and a page shows only their objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_teams import as_user, new_token
from tests.services import Service, embedded

MODEL = {
    "class_name": "Sequential",
    "config": {
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 2]}},
            {"class_name": "Dense", "config": {"units": 1}},
        ]
    },
}


def _job(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": MODEL,
        "compile": {"loss": "mse"},
        "data": {"train": {"x": [[0.0, 1.0]] * 8, "y": [1.0] * 8}},
        "fit": {"epochs": 1},
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    service = embedded(tmp_path_factory.mktemp("pages-teams"), "pages-teams")
    service.start()
    ana = new_token(service, "users", "add", "ana", "--admin")
    bob = new_token(service, "users", "add", "bob")
    jobs = {}
    for user, token in (("ana", ana), ("bob", bob)):
        with as_user(service, token) as client:
            response = client.post("/v1/jobs", json=_job(f"{user}-job"))
            assert response.status_code == 201, response.text
            jobs[user] = response.json()["id"]
    yield {"service": service, "ana": ana, "bob": bob, "jobs": jobs}
    service.stop()


@contextmanager
def _browser(service: Service, token: str | None) -> Iterator[httpx.Client]:
    """A browser that has logged in with ``token`` (or not at all)."""
    with httpx.Client(base_url=service.url, timeout=60, headers={"Origin": service.url}) as browser:
        if token is not None:
            response = browser.post("/login", data={"token": token, "next": "/"})
            assert response.status_code == 303, response.text
            cookie = response.headers["set-cookie"]
            assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        yield browser


def test_a_page_asks_for_a_token_once_users_exist(site: dict[str, Any]) -> None:
    with _browser(site["service"], None) as browser:
        response = browser.get("/")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
        refused = browser.post("/login", data={"token": "rf_not-a-token", "next": "/"})
        assert refused.status_code == 401
        assert "does not open this server" in refused.text


def test_a_user_sees_only_their_own_jobs(site: dict[str, Any], tmp_path: Path) -> None:
    ana_job, bob_job = site["jobs"]["ana"], site["jobs"]["bob"]
    with _browser(site["service"], site["bob"]) as browser:
        listing = browser.get("/")
        assert listing.status_code == 200
        assert bob_job in listing.text and ana_job not in listing.text
        assert "bob-job" in listing.text and "ana-job" not in listing.text
        theirs = browser.get(f"/jobs/{ana_job}")
        missing = browser.get(f"/jobs/{'0' * 32}")
        assert theirs.status_code == missing.status_code == 404
        assert browser.get(f"/jobs/{bob_job}").status_code == 200
        assert browser.get(f"/jobs/{ana_job}/history.csv").status_code == 404
        cancel = browser.post(f"/jobs/{ana_job}/cancel", data={"confirmed": "yes"})
        assert cancel.status_code == 404
        # The cookie opens /v1 as bob too, with bob's rights.
        assert browser.get(f"/v1/jobs/{ana_job}").status_code == 404
    with as_user(site["service"], site["ana"]) as ana:
        assert ana.get(f"/v1/jobs/{ana_job}").json()["status"] != "cancelled"
    with _browser(site["service"], site["ana"]) as browser:  # an admin sees her own by default
        listing = browser.get("/")
        assert ana_job in listing.text and bob_job not in listing.text


def test_the_list_stream_carries_only_the_callers_jobs(site: dict[str, Any]) -> None:
    ana_job, bob_job = site["jobs"]["ana"], site["jobs"]["bob"]
    seen: set[str] = set()
    with (
        as_user(site["service"], site["bob"]) as bob,
        bob.stream("GET", "/v1/events", params={"after": 0}) as stream,
    ):
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data:"):
                seen.add(json.loads(line.removeprefix("data:"))["job"])
            if bob_job in seen:
                break
    assert bob_job in seen and ana_job not in seen
