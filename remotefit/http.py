"""HTTP plumbing of the client: base URL, token, errors as ``RemoteFitError``, SSE."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from remotefit.errors import RemoteFitError

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a job: ``type`` is status, progress, epoch or evaluation."""

    id: int
    type: str
    data: dict[str, Any]


class Http:
    """A thin ``httpx.Client`` that raises the server's message instead of a status line."""

    def __init__(self, url: str | None, token: str | None, timeout: float) -> None:
        self.url = (url or os.environ.get("REMOTEFIT_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("REMOTEFIT_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise RemoteFitError(
                f"Cannot reach the remotefit server at {self.url} ({error}). Is it running? "
                "Set the URL with Client(url=...) or REMOTEFIT_URL."
            ) from None
        check(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def events(self, path: str, after: int = 0) -> Iterator[Event]:
        """Follow an SSE stream to its end, reconnecting with ``Last-Event-ID`` if it breaks."""
        last = after
        for _attempt in range(100):
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                with self.client.stream("GET", path, headers=headers, timeout=None) as response:
                    if response.status_code >= 400:
                        response.read()
                        check(response)
                    for event in parse_sse(response.iter_lines()):
                        last = event.id
                        yield event
                return
            except (httpx.RemoteProtocolError, httpx.ReadError):
                continue  # the stream broke: resume after the last event seen
        raise RemoteFitError(f"The event stream {path} kept breaking; gave up.")

    def close(self) -> None:
        self.client.close()


def check(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, dict):
        raise RemoteFitError(
            str(detail.get("message")),
            status_code=response.status_code,
            code=str(detail.get("code", "")),
            detail=detail,
        )
    raise RemoteFitError(
        f"The server answered {response.status_code}: {response.text[:500]}",
        status_code=response.status_code,
    )


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """SSE frames (``id:``, ``event:``, ``data:``, blank line) → events; comments skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield Event(
                    int(fields.get("id", 0)),
                    fields.get("event", "message"),
                    json.loads(fields["data"]),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
