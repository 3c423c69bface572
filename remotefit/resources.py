"""Datasets and jobs of a remotefit server, as Python objects."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from remotefit.errors import JobFailed, RemoteFitError
from remotefit.http import Event, Http
from remotefit.upload import FileBody

FINAL = ("succeeded", "failed", "cancelled", "pruned")


class Datasets:
    def __init__(self, http: Http) -> None:
        self._http = http

    def upload(self, source: str | Path | Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Upload a file (.npz/.npy/.h5/.csv), or arrays by name (sent as one .npz).

        Arrays are written to a temporary .npz on disk and streamed from there, so they are
        never held twice in memory.
        """
        if isinstance(source, Mapping):
            with tempfile.TemporaryDirectory(prefix="remotefit-") as folder:
                path = Path(folder) / "arrays.npz"
                np.savez(path, **source)  # type: ignore[arg-type]
                return self.upload(path)
        body = FileBody(Path(source))
        result: dict[str, Any] = self._http.json(
            "POST",
            "/v1/datasets",
            content=body,
            headers=body.headers,
            params=body.params,
            timeout=None,
        )
        return result

    def get(self, dataset_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._http.json("GET", f"/v1/datasets/{dataset_id}")
        return result

    def list(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        body = self._http.json("GET", "/v1/datasets", params={"limit": limit, "offset": offset})
        return list(body["items"])

    def delete(self, dataset_id: str) -> None:
        self._http.request("DELETE", f"/v1/datasets/{dataset_id}")


class Remote:
    """Something submitted that runs on the server (a job, a sweep): its latest known state in
    ``data``; follow it, wait for its end, cancel or delete it."""

    collection: ClassVar[str]  # its URL's collection: /v1/{collection}/{id}

    def __init__(self, http: Http, data: dict[str, Any]) -> None:
        self._http = http
        self.data = data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def _url(self) -> str:
        return f"/v1/{self.collection}/{self.id}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.status}>"

    def refresh(self) -> Self:
        self.data = self._http.json("GET", self._url)
        return self

    def events(self, after: int = 0) -> Iterator[Event]:
        """Live events until it ends."""
        return self._http.events(f"{self._url}/events", after)

    def wait(self, timeout: float | None = None, raise_on_failure: bool = True) -> Self:
        """Block until it has ended; ``JobFailed`` if it did not succeed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        name = type(self).__name__
        for _ in self.events():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{name.lower()} {self.id} still {self.status} after {timeout}s")
        self.refresh()
        if raise_on_failure and self.status != "succeeded":
            error = self.data.get("error") or {}
            raise JobFailed(
                f"{name} {self.id} ended {self.status}: {error.get('message', 'no message')}",
                code=str(error.get("code", self.status)),
                detail=self.data,
            )
        return self

    def cancel(self) -> Self:
        try:
            self.data = self._http.json("POST", f"{self._url}/cancel")
        except RemoteFitError as error:
            if error.status_code != 409:  # already ended: nothing to cancel
                raise
        return self

    def delete(self) -> None:
        self._http.request("DELETE", self._url)


class Job(Remote):
    """A submitted job: its events are status, progress, epoch and evaluation."""

    collection = "jobs"

    def download_weights(self, path: str | Path, format: str | None = None) -> Path:
        """Save the trained weights (HDF5) at ``path``; returns the path."""
        params = {"format": format} if format else {}
        response = self._http.request("GET", f"/v1/jobs/{self.id}/weights", params=params)
        Path(path).write_bytes(response.content)
        return Path(path)

    def download_model(self, path: str | Path, format: str = "keras") -> Path:
        response = self._http.request("GET", f"/v1/jobs/{self.id}/model", params={"format": format})
        Path(path).write_bytes(response.content)
        return Path(path)

    def predict(self, x: Any, batch_size: int | None = None) -> Any:
        """Predictions of the trained model on inline arrays (numpy or lists)."""
        body: dict[str, Any] = {"x": _jsonable(x)}
        if batch_size:
            body["batch_size"] = batch_size
        return self._http.json("POST", f"/v1/jobs/{self.id}/predict", json=body)["predictions"]


class Jobs:
    def __init__(self, http: Http) -> None:
        self._http = http

    def submit(self, spec: Mapping[str, Any]) -> Job:
        return Job(self._http, self._http.json("POST", "/v1/jobs", json=dict(spec)))

    def get(self, job_id: str) -> Job:
        return Job(self._http, self._http.json("GET", f"/v1/jobs/{job_id}"))

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> list[Job]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        body = self._http.json("GET", "/v1/jobs", params=params)
        return [Job(self._http, item) for item in body["items"]]


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {key: _jsonable(value) for key, value in x.items()}
    if isinstance(x, list | tuple) and x and hasattr(x[0], "shape"):
        return [np.asarray(item).tolist() for item in x]
    return np.asarray(x).tolist() if hasattr(x, "shape") else x
