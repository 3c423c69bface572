"""The API's dispatcher thread: hands queued jobs to free worker slots in fair turns
(see ``models.jobs.turns``). Woken at once by a submit, otherwise every
``REMOTEFIT_DISPATCH_SECONDS`` to notice slots freed by finished jobs."""

from __future__ import annotations

import logging
import threading

from celery import Celery

from api.dispatch import enqueue
from models.db import session_scope
from models.jobs.turns import dispatch
from models.settings import Settings
from models.tables import utcnow

log = logging.getLogger(__name__)


class Dispatcher(threading.Thread):
    def __init__(self, settings: Settings, celery: Celery) -> None:
        super().__init__(name="remotefit-dispatcher", daemon=True)
        self.settings = settings
        self.celery = celery
        self._wake = threading.Event()
        self._stop = threading.Event()

    def wake(self) -> None:
        """A job was queued: dispatch now rather than at the next period."""
        self._wake.set()

    def dispatch_once(self) -> list[str]:
        with session_scope(self.settings.database_url) as session:
            return dispatch(
                session,
                self.settings,
                lambda job_id: enqueue(self.celery, self.settings.queue, job_id),
                utcnow(),
            )

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.dispatch_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.dispatch_once()
            except Exception:
                # A job marked but not sent (the broker was down) is re-sent by the sweeper.
                log.warning("dispatch pass failed; retrying next period", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
