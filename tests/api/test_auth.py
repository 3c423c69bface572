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
