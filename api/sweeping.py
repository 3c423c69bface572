"""The API's background sweeper thread (see ``models.jobs.sweeper``)."""

from __future__ import annotations

import logging
import threading

from celery import Celery

from api.dispatch import broker_backlog, enqueue
from models.data.store import LocalStore
from models.db import session_scope
from models.jobs.sweeper import remove_stale_temp_files, sweep
from models.settings import Settings

log = logging.getLogger(__name__)


class Sweeper(threading.Thread):
    def __init__(self, settings: Settings, celery: Celery, store: LocalStore) -> None:
        super().__init__(name="remotefit-sweeper", daemon=True)
        self.settings = settings
        self.celery = celery
        self.store = store
        self._stop = threading.Event()

    def sweep_once(self) -> None:
        with session_scope(self.settings.database_url) as session:
            report = sweep(
                session,
                self.settings,
                lambda job_id: enqueue(self.celery, self.settings.queue, job_id),
                lambda: broker_backlog(self.celery, self.settings.queue),
            )
        if report.requeued or report.failed or report.resent:
            log.warning("sweeper: %s", report)
        for job_id in report.failed:  # its lost worker may have died writing a file
            self.store.remove_temporaries("jobs", job_id)
        remove_stale_temp_files(self.store, self.settings.temp_max_age_seconds)

    def run(self) -> None:
        while not self._stop.wait(self.settings.sweep_seconds):
            try:
                self.sweep_once()
            except Exception:
                log.warning("sweeper pass failed; retrying next period", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
