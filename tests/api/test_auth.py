"""With REMOTEFIT_TOKEN set, /v1 needs the token; health probes never do."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from remotefit import Client, RemoteFitError
from tests.services import Service, embedded


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = embedded(tmp_path_factory.mktemp("auth"), "auth", REMOTEFIT_TOKEN="s3cret")
    service.start()
    yield service
    service.stop()


def test_requests_without_the_token_are_refused(guarded: Service) -> None:
    response = httpx.get(f"{guarded.url}/v1/jobs")
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in response.json()["detail"]["message"]
    wrong = httpx.get(f"{guarded.url}/v1/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_the_token_opens_the_api(guarded: Service) -> None:
    with Client(guarded.url, token="s3cret") as client:
        assert client.jobs.list() == []
    with pytest.raises(RemoteFitError, match="requires a token"):
        Client(guarded.url).jobs.list()


def test_health_probes_need_no_token(guarded: Service) -> None:
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200
    assert httpx.get(f"{guarded.url}/readyz").status_code == 200


def test_the_docs_declare_the_token_for_swaggers_authorize_button(guarded: Service) -> None:
    schema = httpx.get(f"{guarded.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    job = schema["paths"]["/v1/jobs/{job_id}"]["get"]
    assert job["security"] == [{"bearer": []}]
    assert "401" in job["responses"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_a_refused_upload_is_not_read(guarded: Service) -> None:
    """The token is checked before the body: a large upload without it is refused at once."""
    body = b"x" * (8 * 1024 * 1024)
    response = httpx.post(
        f"{guarded.url}/v1/datasets", files={"file": ("big.npy", body)}, timeout=30
    )
    assert response.status_code == 401


def test_pages_ask_for_the_token_once_and_keep_it_in_a_strict_httponly_cookie(
    guarded: Service,
) -> None:
    with httpx.Client(base_url=guarded.url) as browser:
        asked = browser.get("/?status=running")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/login?next=%2F%3Fstatus%3Drunning"
        assert browser.get("/docs").status_code == 200  # the docs and their assets stay open
        form = browser.get("/login", params={"next": "/?status=running"})
        assert 'type="password" name="token"' in form.text
        assert 'action="/logout"' not in form.text  # nothing to log out of yet
        origin = {"Origin": guarded.url}
        wrong = browser.post("/login", data={"token": "nope"}, headers=origin)
        assert wrong.status_code == 401
        assert "does not open this server" in wrong.text
        right = browser.post(
            "/login", data={"token": "s3cret", "next": "/?status=running"}, headers=origin
        )
        assert right.status_code == 303
        assert right.headers["location"] == "/?status=running"
        cookie = right.headers["set-cookie"]
        assert cookie.startswith("remotefit_token=s3cret;")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert 'action="/logout"' in browser.get("/").text
        assert browser.get("/v1/jobs").status_code == 200  # what the pages' scripts call
        # An unsafe request on the cookie alone must say where it comes from.
        assert browser.post("/v1/models/inspect", json={"model": {}}).status_code == 403
        inspected = browser.post("/v1/models/inspect", json={"model": {}}, headers=origin)
        assert inspected.status_code == 422  # past the token: the model itself is refused
        out = browser.post("/logout", headers=origin)
        assert out.status_code == 303
        assert browser.get("/").status_code == 303
        assert browser.get("/v1/jobs").status_code == 401


def test_a_login_link_cannot_send_anyone_elsewhere(guarded: Service) -> None:
    for target in ("https://evil.example/", "//evil.example/"):
        response = httpx.post(
            f"{guarded.url}/login",
            data={"token": "s3cret", "next": target},
            headers={"Origin": guarded.url},
        )
        assert response.headers["location"] == "/"
