"""Templates, the filters they use, and the dashboard's 404 page."""

from __future__ import annotations

import inspect
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.access import SERVICE
from models.errors import NotFound, ServiceError
from models.jobs import workers

UNKNOWN = "\N{EN DASH}"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
API_PREFIXES = ("/v1/", "/openapi.json", "/healthz", "/readyz")


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``12.3 s``; an en dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return UNKNOWN
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def metric(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def when(value: datetime | None) -> str:
    if value is None:
        return UNKNOWN
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


templates.env.filters.update(
    duration=duration, metric=metric, when=when, size=size, devices=workers.summary
)


def local_path(path: str, default: str = "/") -> str:
    """Only a path of this server: a link's ``next`` or ``back`` must not send anyone elsewhere."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else default


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template ``name`` with ``context`` and what every page needs."""
    principal = getattr(request.state, "principal", None)
    # Logged in: a page the middleware let through for a token, not for an open server (no
    # users and no token: nothing to log out of) nor the login page itself (no principal).
    context.setdefault("logged_in", principal is not None and principal is not SERVICE)
    context.setdefault("admin", principal is not None and principal.may("admin"))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def not_found(request: Request, what: str) -> HTMLResponse:
    return page(request, "404.html", status_code=404, what=what)


def install_not_found(app: FastAPI) -> None:
    """An unknown page or id gets the dashboard's 404 page; the API keeps its JSON errors."""
    handlers = app.exception_handlers
    for kind in (StarletteHTTPException, NotFound):
        app.add_exception_handler(kind, _pages_first(handlers.get(kind, handlers[ServiceError])))


def _pages_first(json_handler: Any) -> Any:
    async def handler(request: Request, error: Exception) -> Any:
        path = request.url.path
        if getattr(error, "status_code", 0) == 404 and not path.startswith(API_PREFIXES):
            what = error.message if isinstance(error, NotFound) else f"No page at {path}."
            return not_found(request, what)
        answer = json_handler(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    return handler
