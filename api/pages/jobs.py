"""The jobs list (``/``), one job (``/jobs/{id}``), and cancelling from either."""

from __future__ import annotations

import csv
import io
import json
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import CurrentUser, SessionDep
from api.pages import job_table
from api.pages.rendering import local_path, page
from api.schemas import JobRead
from models.accounts import audit
from models.errors import Conflict
from models.jobs import records

router = APIRouter(include_in_schema=False)
FINAL = ("succeeded", "failed", "cancelled", "pruned")


@router.get("/", response_class=HTMLResponse)
def jobs_list(request: Request, session: SessionDep, who: CurrentUser) -> HTMLResponse:
    query = job_table.Query.of(dict(request.query_params))
    rows, total = job_table.page(session, query, who)
    pages = max((total + job_table.PAGE_SIZE - 1) // job_table.PAGE_SIZE, 1)
    return page(
        request,
        "jobs.html",
        query=query,
        rows=rows,
        total=total,
        pages=pages,
        statuses=job_table.STATUSES,
        here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    )


@router.get("/jobs/compare", response_model=None)
def compare(request: Request) -> Response:
    """The first selected job's page with the others overlaid."""
    ids = [i for i in request.query_params.getlist("id") if i.isalnum()]
    if not ids:
        return RedirectResponse("/", status_code=303)
    extra = f"?compare={','.join(ids[1:])}" if len(ids) > 1 else ""
    return RedirectResponse(f"/jobs/{ids[0]}{extra}", status_code=303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, session: SessionDep, who: CurrentUser) -> HTMLResponse:
    job = records.get(session, job_id, who)
    read = JobRead.of(job)
    history = read.history
    epochs = len(next(iter(history.values()), []))
    spec = job.spec or {}
    arguments = {key: spec.get(key) for key in ("compile", "fit", "evaluate") if spec.get(key)}
    boot = {"id": job.id, "status": job.status, "history": history, "final": FINAL}
    return page(
        request,
        "job.html",
        job=read,
        cancelling=job.cancel_requested and job.status not in FINAL,
        final=job.status in FINAL,
        history=history,
        keys=list(history),
        epochs=epochs,
        arguments={k: json.dumps(v, indent=2) for k, v in arguments.items()},
        data=spec.get("data") or {},
        boot=json.dumps(boot).replace("</", "<\\/"),
        base=str(request.base_url).rstrip("/"),
    )


@router.post("/jobs/{job_id}/cancel", response_model=None)
def cancel(
    job_id: str,
    request: Request,
    session: SessionDep,
    who: CurrentUser,
    confirmed: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Without ``confirmed`` (no JavaScript to ask), a page asks first."""
    back = local_path(back, f"/jobs/{job_id}")
    job = records.get(session, job_id, who, write=True)
    if confirmed != "yes":
        return page(request, "confirm.html", job=job, back=back)
    with suppress(Conflict):  # it finished meanwhile: the page will say how
        records.request_cancel(session, job_id, who)
        audit.record(session, who.name, "job.cancel", job_id)
    return RedirectResponse(back, status_code=303)


@router.get("/jobs/{job_id}/history.csv", response_model=None)
def history_csv(job_id: str, request: Request, session: SessionDep, who: CurrentUser) -> Response:
    """Keras' History.history as CSV: a row per epoch, a column per metric."""
    job = records.get(session, job_id, who)
    history = job.history or {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *history])
    for index, values in enumerate(zip(*history.values(), strict=True)):
        writer.writerow([index + 1, *("" if v is None else v for v in values)])
    name = f"{job.name or job.id}-history.csv".replace('"', "")
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
