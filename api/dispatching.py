"""The API's dispatcher thread: hands queued jobs to free worker slots in fair turns
(see ``models.jobs.turns``). Woken at once by a submit, otherwise every
``REMOTEFIT_DISPATCH_SECONDS`` to notice slots freed by finished jobs."""

from __future__ import annotations

from celery import Celery

from api.dispatch import enqueue
from api.periodic import Periodic
from models.db import session_scope
from models.jobs.turns import dispatch
from models.settings import Settings
from models.tables import utcnow


class Dispatcher(Periodic):
    """Woken by a submit; a job marked but not sent (the broker was down) is re-sent by the
    sweeper."""

    def __init__(self, settings: Settings, celery: Celery) -> None:
        super().__init__("remotefit-dispatcher", settings.dispatch_seconds)
        self.settings = settings
        self.celery = celery

    def once(self) -> list[str]:
        with session_scope(self.settings.database_url) as session:
            return dispatch(
                session,
                self.settings,
                lambda job_id: enqueue(self.celery, self.settings.queue, job_id),
                utcnow(),
            )
