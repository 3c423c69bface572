"""Sweeps on the dashboard: the list (``/sweeps``) and one sweep (``/sweeps/{id}``), its
trials' table and their curves overlaid."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import CurrentUser, SessionDep
from api.pages.rendering import page
from api.sweep_schemas import SweepRead
from models.sweeps import records

router = APIRouter(include_in_schema=False)


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(request: Request, session: SessionDep, who: CurrentUser) -> HTMLResponse:
    rows, total = records.listing(session, None, 200, 0, who, everyone=False)
    return page(request, "sweeps.html", sweeps=rows, total=total)


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep_page(
    sweep_id: str, request: Request, session: SessionDep, who: CurrentUser
) -> HTMLResponse:
    sweep = records.get(session, sweep_id, who)
    read = SweepRead.of_trials(sweep, records.trials(session, sweep_id))
    boot = {"id": sweep.id, "metric": read.objective.get("metric", "loss")}
    return page(
        request,
        "sweep.html",
        sweep=read,
        running=read.status in ("queued", "running"),
        boot=json.dumps(boot).replace("</", "<\\/"),
    )
