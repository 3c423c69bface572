"""The FastAPI app: routers, error handlers, body limits, and shared state."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import auth, errors, malloc, openapi_strings
from api.dispatching import Dispatcher
from api.limits import BodyLimit
from api.pages import site
from api.rate import rate_limiter
from api.request_guard import RequestGuard
from api.routes import (
    artifacts,
    audit,
    datasets,
    events,
    health,
    jobs,
    me,
    models,
    sweep_events,
    sweeps,
    tokens,
    workers,
)
from api.schemas import ERROR_RESPONSES
from api.sweep_driving import SweepDriver
from api.sweeping import Sweeper
from api.token_memory import Marker, TokenMemory
from models.accounts import changes
from models.accounts.keys import server_key
from models.accounts.users import any_users
from models.data.store import LocalStore
from models.db import get_engine, session_scope
from models.jobs.event_signals import EventSignals, event_signals
from models.jobs.reads import job_reader
from models.jobs.sweeper import remove_stale_temp_files
from models.settings import Settings, SettingsError, get_settings
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
    {"name": "sweeps", "description": "Search hyper-parameters: each trial is a job."},
    {"name": "accounts", "description": "The caller, their tokens, and the audit log."},
    {"name": "workers", "description": "The live workers: devices, state, jobs (admins)."},
    {"name": "health", "description": "Liveness and readiness for orchestrators."},
]
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def accounts_marker(settings: Settings, signals: EventSignals) -> Marker:
    """What tells the token memory that a token was revoked or a user disabled anywhere."""
    path = changes.stamp_path(settings.database_url)
    if path is not None:
        return lambda: changes.stamp(path)
    return lambda: signals.count(changes.CHANNEL)


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
        app.state.dispatcher.start()
        app.state.event_signals.start()  # the token memory listens for revocations
        app.state.sweep_driver.start()
        yield
        app.state.sweep_driver.stop()
        app.state.dispatcher.stop()
        sweeper.stop()
        await app.state.job_reader.close()
        await app.state.event_signals.close()

    app = FastAPI(
        title="remotefit",
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        docs_url=None,  # served by api.pages from vendored assets, never a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = LocalStore(settings.store_root)
    app.state.celery = create_celery(settings)
    app.state.dispatcher = Dispatcher(settings, app.state.celery)
    app.state.sweep_driver = SweepDriver(settings, app.state.dispatcher.wake)
    get_engine(settings.database_url)  # creates the tables; fails fast on a bad URL
    refuse_open_exposure(settings)
    app.state.token_key = server_key(settings)
    app.state.job_reader = job_reader(settings.database_url, render=jobs.render_job)
    app.state.event_signals = event_signals(settings.database_url, (changes.CHANNEL,))
    app.state.event_streams = events.OpenStreams()
    errors.install(app)
    app.add_middleware(RequestGuard)  # inside BodyLimit: it reads bodies already bounded
    app.add_middleware(
        BodyLimit,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    # Routes are matched in order: the most polled first. The docs list tags by OPENAPI_TAGS.
    for module in (jobs, events, artifacts, datasets, models, me, tokens, audit, workers):
        app.include_router(module.router)
    for module in (sweeps, sweep_events):
        app.include_router(module.router)
    app.include_router(events.every_job)
    app.include_router(health.router)
    site.install(app)
    app.state.token_memory = TokenMemory(accounts_marker(settings, app.state.event_signals))
    auth.install(app, settings, rate_limiter(settings), app.state.token_memory)
    openapi_strings.install(app)
    app.add_middleware(auth.SameOrigin)
    _warm_up(settings)
    return app


def refuse_open_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address with neither users nor a token.

    Raises:
        SettingsError: the service would be open to its whole network.
    """
    if settings.token or settings.host in LOOPBACK or settings.host.startswith("127."):
        return
    with session_scope(settings.database_url) as session:
        if any_users(session):
            return
    if settings.allow_anonymous:
        logging.getLogger(__name__).warning(
            "remotefit: serving %s with no users and no token (REMOTEFIT_ALLOW_ANONYMOUS=true): "
            "anyone who reaches this address can train, read and delete everything.",
            settings.host,
        )
        return
    raise SettingsError(
        f"remotefit refuses to serve {settings.host} with no user and no token: anyone on the "
        "network could use it. Add an admin first: `remotefit users add NAME --admin` (it "
        "prints the admin's token), or set REMOTEFIT_TOKEN, or listen on 127.0.0.1. To serve "
        "it open anyway, set REMOTEFIT_ALLOW_ANONYMOUS=true."
    )


def _warm_up(settings: Settings) -> None:
    """Import Keras and build one model now, so the first submitted job is not the slow one."""
    from api.examples import SEED_MODEL
    from models.keras.model import describe

    describe(SEED_MODEL, settings)
