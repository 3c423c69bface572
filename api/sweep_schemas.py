"""Response bodies of ``/v1/sweeps`` (the request is ``models.sweeps.spec.SweepCreate``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import _Read
from models.sweeps.records import TrialView, best, direction
from models.tables import Sweep


class TrialRead(BaseModel):
    number: int = Field(description="Optuna's trial number.")
    job: str | None = Field(description="The trial's job: `GET /v1/jobs/{job}/weights`.")
    params: dict[str, Any]
    status: str = Field(description="queued, running, succeeded, pruned, failed or cancelled")
    value: float | None = Field(description="The objective at the trial's last epoch.")
    epochs: int = Field(description="Epochs trained.")

    @classmethod
    def of(cls, view: TrialView) -> TrialRead:
        return cls(
            number=view.number,
            job=view.job,
            params=view.params,
            status=view.status,
            value=view.value,
            epochs=view.epochs,
        )


class BestRead(BaseModel):
    number: int
    job: str | None
    params: dict[str, Any]
    value: float


class SweepLinks(BaseModel):
    self: str
    events: str
    cancel: str


class SweepSummary(_Read):
    id: str
    name: str | None
    status: str = Field(description="queued → running → succeeded | failed | cancelled")
    error: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None
    links: SweepLinks

    @classmethod
    def fields_of(cls, sweep: Sweep) -> dict[str, Any]:
        base = f"/v1/sweeps/{sweep.id}"
        return {
            "id": sweep.id,
            "name": sweep.name,
            "status": sweep.status,
            "error": sweep.error,
            "created_at": sweep.created_at,
            "finished_at": sweep.finished_at,
            "links": SweepLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel"),
        }

    @classmethod
    def of(cls, sweep: Sweep) -> SweepSummary:
        return cls(**cls.fields_of(sweep))


class SweepRead(SweepSummary):
    objective: dict[str, Any]
    budget: dict[str, Any]
    parameters: dict[str, Any]
    trials: list[TrialRead]
    best: BestRead | None = Field(description="The succeeded trial with the best value.")

    @classmethod
    def of_trials(cls, sweep: Sweep, views: list[TrialView]) -> SweepRead:
        top = best(views, direction(sweep))
        spec = sweep.spec or {}
        return cls(
            **cls.fields_of(sweep),
            objective=spec.get("objective") or {},
            budget=spec.get("budget") or {},
            parameters=spec.get("parameters") or {},
            trials=[TrialRead.of(view) for view in views],
            best=None
            if top is None or top.value is None
            else BestRead(number=top.number, job=top.job, params=top.params, value=top.value),
        )


class SweepList(BaseModel):
    items: list[SweepSummary]
    total: int
    limit: int
    offset: int
