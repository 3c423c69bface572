"""Assertions shared by the tests of bad requests: a clear 4xx, and nothing left behind."""

from __future__ import annotations

from typing import Any

import httpx

from tests.services import Service


def assert_rejected(response: httpx.Response, status: int, code: str, *phrases: str) -> None:
    """A 4xx with ``code`` whose message holds every phrase, and no stack trace."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    detail = response.json()["detail"]
    assert detail["code"] == code, detail
    for phrase in phrases:
        assert phrase in detail["message"], f"{phrase!r} not in: {detail['message']}"


def snapshot(client: httpx.Client, service: Service) -> dict[str, Any]:
    """What a rejected request must leave as it was: jobs, datasets, and the store's files."""
    root = service.store_root
    return {
        "jobs": client.get("/v1/jobs").json()["total"],
        "datasets": sorted(d["id"] for d in client.get("/v1/datasets?limit=1000").json()["items"]),
        "stored": sorted(p.name for p in (root / "datasets").iterdir()),
        "tmp": sorted(p.name for p in (root / "tmp").iterdir()),
    }
