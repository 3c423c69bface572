"""The browser's side of the service: offline API docs and the dashboard's pages.

Templates and static files live beside the routes, inside the package, so ``pip install``
ships them; nothing a page loads comes from another origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.pages import datasets, docs, jobs, login, submit, sweeps, workers
from api.pages.rendering import install_not_found

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the static files, the docs and the dashboard's pages on ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (docs, login, jobs, datasets, submit, workers, sweeps):
        app.include_router(module.router)
    install_not_found(app)
