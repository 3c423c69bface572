"""The FastAPI app: routers, error handlers, body limits, and shared state."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, malloc
from api.auth import SameOrigin, require_token
from api.limits import BodyLimit
from api.pages import site
from api.routes import artifacts, datasets, events, health, jobs, models
from api.sweeping import Sweeper
from models.data.store import LocalStore
from models.db import get_engine
from models.jobs.event_signals import event_signals
from models.jobs.reads import job_reader
from models.jobs.sweeper import remove_stale_temp_files
from models.settings import Settings, get_settings
from worker.app import create_celery

DESCRIPTION = """\
`model.fit()` as a service. Send what Keras gives you — `model.to_json()`, the arguments of
`compile()`, `fit()` and `evaluate()`, and your arrays — and download trained HDF5 weights that
`model.load_weights()` accepts.

1. `POST /v1/datasets` a `.npz`/`.npy`/`.h5`/`.csv` file (or put small arrays inline in the job).
2. `POST /v1/jobs` the job spec; it is validated fully before it is queued.
3. `GET /v1/jobs/{id}` until `succeeded`: history, evaluation, timings.
4. `GET /v1/jobs/{id}/weights`.
"""

# The order the docs show, which is the order of the work: upload, check, train, download.
OPENAPI_TAGS = [
    {"name": "datasets", "description": "Upload arrays once; name them in any number of jobs."},
    {"name": "models", "description": "Check a model JSON before training it."},
    {"name": "jobs", "description": "Submit, watch, cancel and delete training jobs."},
    {"name": "artifacts", "description": "Download trained weights; predict with them."},
    {"name": "health", "description": "Liveness and readiness for orchestrators."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when not given)."""
    settings = settings or get_settings()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    malloc.tune_for_streaming()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove_stale_temp_files(app.state.store, settings.temp_max_age_seconds)
        sweeper = Sweeper(settings, app.state.celery, app.state.store)
        sweeper.start()
        yield
        sweeper.stop()
        await app.state.job_reader.close()
        await app.state.event_signals.close()

    app = FastAPI(
        title="remotefit",
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        docs_url=None,  # served by api.pages from vendored assets, never a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = LocalStore(settings.store_root)
    app.state.celery = create_celery(settings)
    get_engine(settings.database_url)  # creates the tables; fails fast on a bad URL
    app.state.job_reader = job_reader(settings.database_url, render=jobs.render_job)
    app.state.event_signals = event_signals(settings.database_url)
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    # Routes are matched in order: the most polled first. The docs list tags by OPENAPI_TAGS.
    for module in (jobs, events, artifacts, datasets, models):
        app.include_router(module.router)
    app.include_router(events.every_job)
    app.include_router(health.router)
    site.install(app)
    if settings.token:
        require_token(app, settings.token)
    app.add_middleware(SameOrigin)
    _warm_up(settings)
    return app


def _warm_up(settings: Settings) -> None:
    """Import Keras and build one model now, so the first submitted job is not the slow one."""
    from api.examples import SEED_MODEL
    from models.keras.model import describe

    describe(SEED_MODEL, settings)
