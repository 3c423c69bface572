"""The workers (``/workers``, admins): which are free, which busy and with what, on what."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import CurrentUser, SessionDep
from api.pages.rendering import page
from models.jobs import workers
from models.tables import utcnow

router = APIRouter(include_in_schema=False)


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, session: SessionDep, who: CurrentUser) -> HTMLResponse:
    if not who.may("admin"):
        what = "The workers page is for admins: their jobs run on the same workers as yours."
        return page(request, "404.html", status_code=403, what=what, heading="For admins")
    found = workers.live(session, request.app.state.settings, utcnow())
    busy = sum(w["state"] == "busy" for w in found)
    return page(request, "workers.html", workers=found, busy=busy, free=len(found) - busy)
