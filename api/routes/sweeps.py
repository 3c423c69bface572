"""Sweeps: submit, list, show, cancel, delete (events: ``api.routes.sweep_events``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request, status

from api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from api.examples import INLINE_JOB
from api.schemas import Offset
from api.sweep_schemas import SweepList, SweepRead, SweepSummary
from models.accounts import audit, quotas
from models.data import catalog
from models.jobs import initial_weights
from models.spec import JobCreate
from models.sweeps import records, sampling
from models.sweeps.checks import check_sweep, referenced
from models.sweeps.spec import SweepCreate

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]

# Sent as it is with "Try it out": the inline seed example, searched over its first layer's
# width, the optimizer's learning rate and the batch size.
SWEEP_EXAMPLE = Body(
    openapi_examples={
        "width and learning rate": {
            "summary": "The inline seed example: units, learning rate, batch size; ASHA",
            "value": {
                "name": "seed-width",
                "base": {
                    **INLINE_JOB,
                    "compile": {
                        "loss": "binary_crossentropy",
                        "metrics": ["accuracy"],
                        "optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 0.001}},
                    },
                },
                "parameters": {
                    "units": {
                        "target": "/model/config/layers/@dense/config/units",
                        "int": {"low": 16, "high": 256, "log": True},
                    },
                    "learning_rate": {
                        "target": "/compile/optimizer/config/learning_rate",
                        "float": {"low": 1e-4, "high": 1e-1, "log": True},
                    },
                    "batch": {"target": "/fit/batch_size", "categorical": [1, 2, 4]},
                },
                "objective": {"metric": "loss", "direction": "minimize"},
                "sampler": {"type": "tpe", "seed": 7},
                "pruner": {"type": "asha", "min_epochs": 1, "reduction_factor": 3},
                "budget": {"max_trials": 6, "max_concurrent_trials": 2},
            },
        }
    }
)


@router.post("", status_code=status.HTTP_201_CREATED)
def submit_sweep(
    sweep: Annotated[SweepCreate, SWEEP_EXAMPLE],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: CurrentUser,
) -> SweepRead:
    """Check a sweep fully (its base as a job, every target, the corners of the space), then
    queue it; its trials are jobs, started a few at a time. A bad sweep creates nothing.

    Beyond this schema: `base` is checked as `POST /v1/jobs` checks a job, each target must
    resolve in it to a value of the parameter's type (never a `class_name`, `module` or
    `registered_name`), and every corner of the space must pass as a job (a 422 names the
    parameter)."""

    def weights_exist(spec: JobCreate) -> None:
        if spec.initial_weights is not None:
            initial_weights.check_source(session, spec.initial_weights, who)

    shapes = catalog.shapes(session, referenced(sweep), who)
    base = check_sweep(sweep, shapes, settings, weights_exist)
    base["time_limit_s"] = quotas.check_submit(session, who, settings, sweep.base.time_limit_s)
    row = records.create(session, sweep, base, who.user_id)
    audit.record(session, who.name, "sweep.submit", row.id)
    session.commit()
    request.app.state.sweep_driver.wake()
    return SweepRead.of_trials(row, [])


@router.get("")
def list_sweeps(
    session: SessionDep,
    who: CurrentUser,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
    all: Annotated[bool, Query(description="Admins: every user's sweeps.")] = False,
) -> SweepList:
    """List the caller's sweeps, newest first, optionally by status."""
    rows, total = records.listing(session, status, limit, offset, who, all)
    return SweepList(
        items=[SweepSummary.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{sweep_id}")
def get_sweep(sweep_id: str, session: SessionDep, who: CurrentUser) -> SweepRead:
    """One sweep: status, its trials (number, job, params, status, value, epochs), the best."""
    sweep = records.get(session, sweep_id, who)
    return SweepRead.of_trials(sweep, records.trials(session, sweep_id))


@router.post("/{sweep_id}/cancel")
def cancel_sweep(
    sweep_id: str, request: Request, session: SessionDep, who: CurrentUser
) -> SweepRead:
    """Cancel: no new trial starts; queued trials never start, running ones stop."""
    sweep = records.request_cancel(session, sweep_id, who)
    audit.record(session, who.name, "sweep.cancel", sweep_id)
    session.commit()
    request.app.state.sweep_driver.wake()
    return SweepRead.of_trials(sweep, records.trials(session, sweep_id))


@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sweep(
    sweep_id: str, session: SessionDep, settings: SettingsDep, store: StoreDep, who: CurrentUser
) -> None:
    """Delete an ended sweep with its trials' jobs and files (409 while it runs: cancel it)."""
    job_ids = records.delete(session, sweep_id, who)
    audit.record(session, who.name, "sweep.delete", sweep_id)
    session.commit()
    for job_id in job_ids:
        store.delete("jobs", job_id)
    sampling.delete(sampling.storage(settings.database_url), sweep_id)
