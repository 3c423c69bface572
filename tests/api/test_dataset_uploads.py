"""Every bad upload gets a 4xx that names its problem, never a traceback, and stores nothing.

The store is checked on disk: no new folder under ``datasets/`` and nothing left in ``tmp/``.
Runs on the embedded default and on Redis + PostgreSQL; the upload limit is tested on a small
embedded service of its own, started with a 100 kB limit.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import httpx
import numpy as np
import pytest

from tests.assertions import assert_rejected, snapshot
from tests.conftest import seed_job, upload, wait_for_job
from tests.services import CLI, QUIET, Service, embedded

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
SMALL_LIMIT = 100_000


def assert_tmp_empty(service: Service) -> None:
    assert list((service.store_root / "tmp").iterdir()) == []


def upload_rejected(
    client: httpx.Client,
    service: Service,
    files: dict[str, tuple[str, bytes]],
    status: int,
    code: str,
    *phrases: str,
) -> None:
    """Upload ``files`` (multipart), expect a refusal, and check that nothing was stored."""
    before = snapshot(client, service)
    response = client.post("/v1/datasets", files=files)
    assert_rejected(response, status, code, *phrases)
    assert snapshot(client, service) == before
    assert_tmp_empty(service)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def h5_bytes(tmp_path: Path, external_link: bool) -> bytes:
    path = tmp_path / "upload.h5"
    with h5py.File(path, "w") as file:
        file["x_train"] = np.arange(6.0).reshape(3, 2)
        if external_link:
            file["y_train"] = h5py.ExternalLink("/etc/secrets.h5", "/labels")
    return path.read_bytes()


BAD_FILES = [
    pytest.param(
        "data.txt",
        lambda tmp: b"1,2\n3,4\n",
        ["'data.txt'", ".csv, .h5, .hdf5, .npy, .npz"],
        id="unknown-extension",
    ),
    pytest.param(
        "data.npz",
        lambda tmp: b"PK? no, just text claiming to be an npz",
        ["not a valid .npz file", "not a zip archive"],
        id="npz-that-is-not-a-zip",
    ),
    pytest.param(
        "objects.npy",
        lambda tmp: npy_bytes(np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
        ["holds objects", "dtype='object'"],
        id="npy-of-pickled-objects",
    ),
    pytest.param(
        "truncated.npy",
        lambda tmp: npy_bytes(np.arange(1000, dtype=np.float64))[:500],
        ["truncated or corrupt", "shape (1000,)", "8000 bytes"],
        id="truncated-npy",
    ),
    pytest.param(
        "corrupt.npy",
        lambda tmp: b"\x93NUMPY\x01\x00garbage header",
        ["not a valid .npy array"],
        id="corrupt-npy-header",
    ),
    pytest.param(
        "data.h5",
        lambda tmp: b"this is not HDF5 " * 20,
        ["not a valid HDF5 file"],
        id="h5-that-is-not-hdf5",
    ),
    pytest.param(
        "linked.h5",
        lambda tmp: h5_bytes(tmp, external_link=True),
        ["external link", "'/etc/secrets.h5'", "'y_train'"],
        id="h5-with-external-link",
    ),
    pytest.param(
        "table.csv",
        lambda tmp: b"age,city\n31,4\n45,Paris\n",
        ["non-numeric cell", "column 'city'", "row 2", "'Paris'"],
        id="csv-with-text-cell",
    ),
]


@pytest.mark.parametrize(("filename", "make", "phrases"), BAD_FILES)
def test_bad_file_is_rejected(
    client: httpx.Client,
    service: Service,
    tmp_path: Path,
    filename: str,
    make: Any,
    phrases: list[str],
) -> None:
    upload_rejected(
        client, service, {"file": (filename, make(tmp_path))}, 422, "invalid_upload", *phrases
    )


@pytest.mark.parametrize("filename", ["empty.npz", "empty.npy", "empty.h5", "empty.csv"])
def test_empty_file_is_rejected(client: httpx.Client, service: Service, filename: str) -> None:
    upload_rejected(
        client, service, {"file": (filename, b"")}, 422, "invalid_upload", "empty (0 bytes)"
    )


def test_upload_without_file_field_is_rejected(client: httpx.Client, service: Service) -> None:
    upload_rejected(
        client,
        service,
        {"data": ("seed.npz", npy_bytes(np.zeros(3)))},
        422,
        "invalid_request",
        "`file` is required",
    )


RAW = {"content-type": "application/octet-stream"}


def raw_rejected(
    client: httpx.Client,
    service: Service,
    content: bytes,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    code: str,
    *phrases: str,
) -> None:
    """Upload ``content`` as a raw body, expect a refusal, and check that nothing was stored."""
    before = snapshot(client, service)
    response = client.post("/v1/datasets", content=content, params=params, headers=headers)
    assert_rejected(response, status, code, *phrases)
    assert snapshot(client, service) == before
    assert_tmp_empty(service)


def test_a_raw_body_named_by_query_is_stored(client: httpx.Client, service: Service) -> None:
    content = npy_bytes(np.arange(12.0, dtype=np.float32).reshape(4, 3))
    response = client.post(
        "/v1/datasets", content=content, params={"filename": "four.npy"}, headers=RAW
    )
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["filename"] == "four.npy"
    assert dataset["arrays"] == [{"name": "array", "shape": [4, 3], "dtype": "float32"}]
    stored = service.store_root / "datasets" / dataset["id"]
    assert [path.read_bytes() for path in stored.iterdir()] == [content]
    assert_tmp_empty(service)
    client.delete(f"/v1/datasets/{dataset['id']}").raise_for_status()


def test_a_raw_body_without_a_filename_is_rejected(client: httpx.Client, service: Service) -> None:
    raw_rejected(
        client,
        service,
        npy_bytes(np.zeros(3)),
        {},
        RAW,
        422,
        "invalid_request",
        "query parameter `filename`",
        "?filename=data.npz",
    )


def test_a_raw_body_with_an_overlong_filename_is_rejected(
    client: httpx.Client, service: Service
) -> None:
    raw_rejected(
        client,
        service,
        npy_bytes(np.zeros(3)),
        {"filename": "x" * 300 + ".npy"},
        RAW,
        422,
        "invalid_request",
        "`query.filename`",
        "at most 255 characters",
    )


def test_a_raw_body_is_checked_as_a_form_is(client: httpx.Client, service: Service) -> None:
    pickled = npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True)
    raw_rejected(
        client, service, pickled, {"filename": "x.npy"}, RAW, 422, "invalid_upload", "holds objects"
    )


def test_another_content_type_is_rejected(client: httpx.Client, service: Service) -> None:
    raw_rejected(
        client,
        service,
        b"1,2\n3,4\n",
        {"filename": "x.csv"},
        {"content-type": "text/csv"},
        422,
        "invalid_request",
        "'text/csv'",
        "multipart/form-data",
        "application/octet-stream",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"/v1/datasets/{UNKNOWN_ID}"), ("DELETE", f"/v1/datasets/{UNKNOWN_ID}")],
    ids=["get", "delete"],
)
def test_unknown_dataset_is_404(
    client: httpx.Client, service: Service, method: str, path: str
) -> None:
    before = snapshot(client, service)
    response = client.request(method, path)
    assert_rejected(response, 404, "dataset_not_found", repr(UNKNOWN_ID), "GET /v1/datasets")
    assert snapshot(client, service) == before


def test_dataset_of_an_unfinished_job_is_not_deleted(
    client: httpx.Client, service: Service, seed_npz: Path
) -> None:
    dataset = upload(client, seed_npz)
    # Minutes of work, so the job is still queued or running when the delete comes.
    response = client.post("/v1/jobs", json=seed_job(dataset["id"], epochs=1000, batch_size=1))
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    try:
        before = snapshot(client, service)
        assert_rejected(
            client.delete(f"/v1/datasets/{dataset['id']}"),
            409,
            "conflict",
            f"Dataset {dataset['id']} is used by unfinished jobs",
            job_id,
        )
        assert snapshot(client, service) == before
        assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 200
    finally:
        client.post(f"/v1/jobs/{job_id}/cancel")
    assert wait_for_job(client, job_id, timeout=60)["status"] == "cancelled"
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204


def test_service_still_works_after_bad_uploads(
    client: httpx.Client, service: Service, seed_npz: Path
) -> None:
    assert client.get("/readyz").status_code == 200
    dataset = upload(client, seed_npz)
    assert (service.store_root / "datasets" / dataset["id"]).is_dir()
    assert_tmp_empty(service)
    response = client.post("/v1/jobs", json=seed_job(dataset["id"], epochs=1))
    assert response.status_code == 201, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert not (service.store_root / "datasets" / dataset["id"]).exists()


@pytest.fixture(scope="module")
def small_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """An embedded service of its own whose uploads are limited to 100 kB."""
    service = embedded(
        tmp_path_factory.mktemp("small-uploads"),
        name="small-uploads",
        REMOTEFIT_MAX_UPLOAD_BYTES=str(SMALL_LIMIT),
    )
    service.start()
    yield service
    service.stop()


@pytest.fixture
def small_client(small_service: Service) -> Iterator[httpx.Client]:
    with small_service.client() as http:
        yield http


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "remotefit-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), boundary


def test_upload_over_the_limit_is_413(small_client: httpx.Client, small_service: Service) -> None:
    content = npy_bytes(np.zeros(25_000))  # 200 kB
    upload_rejected(
        small_client,
        small_service,
        {"file": ("big.npy", content)},
        413,
        "upload_too_large",
        f"limit of {SMALL_LIMIT} bytes",
        "REMOTEFIT_MAX_UPLOAD_BYTES",
    )


def test_streamed_upload_over_the_limit_is_413(
    small_client: httpx.Client, small_service: Service
) -> None:
    # Without Content-Length the limit is found part-way through the body, while FastAPI
    # parses the form: the refusal must still be a 413, and no partial file may remain.
    body, boundary = multipart("big.npy", npy_bytes(np.zeros(25_000)))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = snapshot(small_client, small_service)
    response = small_client.post(
        "/v1/datasets",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_rejected(
        response,
        413,
        "upload_too_large",
        f"limit of {SMALL_LIMIT} bytes",
        "REMOTEFIT_MAX_UPLOAD_BYTES",
    )
    assert snapshot(small_client, small_service) == before
    assert_tmp_empty(small_service)


def test_streamed_raw_upload_over_the_limit_is_413(
    small_client: httpx.Client, small_service: Service
) -> None:
    content = npy_bytes(np.zeros(25_000))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]

    before = snapshot(small_client, small_service)
    response = small_client.post(
        "/v1/datasets", content=chunks(), params={"filename": "big.npy"}, headers=RAW
    )
    assert_rejected(response, 413, "upload_too_large", f"limit of {SMALL_LIMIT} bytes")
    assert snapshot(small_client, small_service) == before
    assert_tmp_empty(small_service)


@pytest.fixture(scope="module")
def roomy_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """An API of its own (no worker) that allows uploads larger than any disk."""
    folder = tmp_path_factory.mktemp("roomy-uploads")
    service = Service(
        name="roomy-uploads",
        folder=folder,
        env={
            **QUIET,
            "REMOTEFIT_DATA_DIR": str(folder / "var"),
            "REMOTEFIT_MAX_UPLOAD_BYTES": str(2**60),
        },
        commands=[[*CLI, "api"]],
    )
    service.start()
    yield service
    service.stop()


def test_an_upload_larger_than_the_free_disk_is_507_before_its_body(
    roomy_service: Service,
) -> None:
    size = 2 * shutil.disk_usage(roomy_service.store_root).free + 2**30
    host, port = roomy_service.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/datasets?filename=huge.npy")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(size))
    connection.endheaders(b"\x93NUMPY")  # the body's first bytes; the rest never comes
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 507, body
    detail = json.loads(body)["detail"]
    assert detail["code"] == "store_full"
    assert f"no room for this upload of {size} bytes" in detail["message"]
    assert "DELETE /v1/datasets/{id}" in detail["message"]
    assert_tmp_empty(roomy_service)
    assert httpx.get(f"{roomy_service.url}/v1/datasets").json()["items"] == []


def test_upload_under_the_limit_is_stored(
    small_client: httpx.Client, small_service: Service
) -> None:
    content = npy_bytes(np.zeros((1000, 10), dtype=np.float32))  # 40 kB
    assert len(content) < SMALL_LIMIT
    response = small_client.post("/v1/datasets", files={"file": ("ok.npy", content)})
    assert response.status_code == 201, response.text
    assert response.json()["arrays"] == [{"name": "array", "shape": [1000, 10], "dtype": "float32"}]
    assert small_client.get("/readyz").status_code == 200
    assert_tmp_empty(small_service)
    assert os.listdir(small_service.store_root / "datasets") == [response.json()["id"]]
