"""The worker's heartbeat: how many jobs it can train at once (for fair turns) and its name.

The dispatcher (``models.jobs.turns``) sends a job only to a free slot; a worker that stops
reporting (killed, unplugged) counts for nothing once a lease has passed. The heartbeat runs on
a thread of the Celery parent process, with an engine that keeps no connection, since the
parent forks its pool processes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

log = logging.getLogger(__name__)
SLOTS = 1  # one pool process, one job at a time (see remotefit.cli.run_worker)
_stop = threading.Event()
_name: list[str] = []  # Celery's name for this worker (remotefit@host), once it is ready


def _report(slots: int) -> None:
    from sqlalchemy.orm import Session

    from models.db import unpooled_engine
    from models.jobs.workers import report_slots
    from models.settings import get_settings
    from models.tables import utcnow

    engine = unpooled_engine(get_settings().database_url)
    try:
        with Session(engine) as session:
            host = socket.gethostname()
            name = _name[0] if _name else None
            report_slots(session, f"{host}:{os.getpid()}", slots, utcnow(), name, host)
            session.commit()
    finally:
        engine.dispose()


def _beat() -> None:
    from models.settings import get_settings

    period = min(5.0, get_settings().lease_seconds / 3)
    while True:
        try:
            _report(SLOTS)
        except Exception:
            log.warning("slot heartbeat failed; retrying", exc_info=True)
        if _stop.wait(period):
            return


@worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    if isinstance(getattr(sender, "hostname", None), str):
        _name[:] = [sender.hostname]
    threading.Thread(target=_beat, name="remotefit-slots", daemon=True).start()


@worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    _stop.set()
    try:
        _report(0)
    except Exception:
        log.warning("could not report the worker's slots gone", exc_info=True)
