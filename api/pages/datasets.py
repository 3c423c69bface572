"""Datasets (``/datasets``): what is stored, an upload form, delete with confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import CurrentUser, SessionDep, StoreDep
from api.pages.rendering import page
from models.accounts import audit
from models.data import catalog
from models.errors import Conflict

router = APIRouter(include_in_schema=False)


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, session: SessionDep, who: CurrentUser) -> HTMLResponse:
    datasets = catalog.listing(session, 1000, 0, who)
    return page(request, "datasets.html", datasets=datasets, error="")


@router.post("/datasets/{dataset_id}/delete", response_model=None)
def delete(
    dataset_id: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    who: CurrentUser,
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    """Without ``confirmed`` (no JavaScript to ask), a page asks first."""
    try:
        dataset = catalog.get(session, dataset_id, who, write=True)
        if confirmed != "yes":
            return page(request, "confirm_dataset.html", dataset=dataset)
        audit.record(session, who.name, "dataset.delete", dataset_id)
        catalog.delete(session, store, dataset_id, who)
    except Conflict as error:
        session.rollback()
        listing = catalog.listing(session, 1000, 0, who)
        return page(request, "datasets.html", 409, datasets=listing, error=error.message)
    return RedirectResponse("/datasets", status_code=303)
