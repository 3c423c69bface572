"""Runs one job on a worker: claim it, train it, store its artifacts, record the outcome.

This is the whole of what a Celery task does, kept free of Celery so it reads (and is tested)
as plain code. It re-reads the job from the database each time it runs, so a message delivered
twice is harmless: the second delivery loses the claim and returns.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from models import dataset_catalog, jobs
from models.compiling import compile_model
from models.db import session_scope
from models.errors import ServiceError
from models.keras_model import build
from models.settings import Settings
from models.spec import JobCreate
from models.store import LocalStore
from models.training import save_artifacts, train_and_evaluate

log = logging.getLogger(__name__)


class _DatabaseReporter:
    """Writes each epoch to the job row and polls it for cancellation."""

    def __init__(self, settings: Settings, job_id: str) -> None:
        self.url = settings.database_url
        self.job_id = job_id

    def epoch_end(self, epoch: int, epochs: int, logs: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            jobs.record_epoch(session, self.job_id, epoch, epochs, logs)

    def should_stop(self) -> bool:
        with session_scope(self.url) as session:
            return jobs.cancel_requested(session, self.job_id)


def _error(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ServiceError):
        return {"type": type(error).__name__, "code": error.code, "message": error.message}
    message = " ".join(str(error).split())[:2000] or repr(error)
    return {"type": type(error).__name__, "code": "training_failed", "message": message}


def run_job(job_id: str, settings: Settings, worker: str) -> str:
    """Train job ``job_id`` if this worker wins its claim.

    Args:
        job_id: the job to run.
        settings: database, store and limits.
        worker: a name for this worker, recorded on the job.

    Returns:
        The job's final status, or ``"skipped"`` when another delivery already has it.
    """
    url = settings.database_url
    with session_scope(url) as session:
        if not jobs.claim(session, job_id, worker, settings.max_attempts):
            log.info("job %s: not claimed (already taken, finished or deleted)", job_id)
            return "skipped"
        spec = JobCreate.model_validate(jobs.get(session, job_id).spec)
    store = LocalStore(settings.store_root)
    started = time.monotonic()
    try:
        model = build(spec.model, settings)
        compile_model(model, spec.compile, settings)
        with session_scope(url) as session:
            outcome = train_and_evaluate(
                model,
                spec,
                lambda dataset_id: dataset_catalog.open_reader(session, store, dataset_id),
                _DatabaseReporter(settings, job_id),
            )
        artifacts = list(save_artifacts(model, lambda name: store.writing("jobs", job_id, name)))
    except Exception as error:
        log.exception("job %s failed", job_id)
        with session_scope(url) as session:
            jobs.finish(session, job_id, "failed", error=_error(error))
        return "failed"
    status = "cancelled" if outcome.stopped else "succeeded"
    with session_scope(url) as session:
        jobs.finish(session, job_id, status, evaluation=outcome.evaluation, artifacts=artifacts)
    log.info("job %s %s in %.2fs", job_id, status, time.monotonic() - started)
    return status
