"""The live workers, for admins: what each trains on and what it runs now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import SessionDep
from models.jobs import workers
from models.tables import utcnow

router = APIRouter(prefix="/v1/workers", tags=["workers"])


class WorkerRead(BaseModel):
    id: str = Field(description="host:pid of the worker's Celery parent process")
    name: str = Field(description="Celery's name for it: remotefit@host, remotefit-gpu0@host")
    host: str
    devices: list[dict[str, Any]] | None = Field(
        description="What it trains on: each GPU (`name`, `compute_capability`, `memory_bytes`) "
        "or the CPU (`name`, `cores`); null until its pool process has started TensorFlow."
    )
    summary: str = Field(description="The devices in a few words: `2x NVIDIA H200 (141 GiB)`.")
    slots: int = Field(description="Jobs it can train at once.")
    state: str = Field(description="`idle` or `busy`")
    job: str | None = Field(description="The job it runs now, if any.")
    jobs: list[str] = Field(description="Every job it runs now (one per slot).")
    jobs_done: int = Field(description="Jobs it ran that have ended (any final status).")
    started_at: datetime | None
    last_heartbeat: datetime


class WorkerList(BaseModel):
    items: list[WorkerRead]


@router.get("")
def list_workers(request: Request, session: SessionDep) -> WorkerList:
    """Each worker heard from within the lease (admins only, once the service has users);
    a worker that stopped heartbeating drops out."""
    found = workers.live(session, request.app.state.settings, utcnow())
    return WorkerList(items=[WorkerRead(**worker) for worker in found])
