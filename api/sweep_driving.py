"""The API's sweep driver thread (see ``models.sweeps.driver``): every
``REMOTEFIT_DRIVE_SECONDS``, or at once when a sweep is submitted or cancelled."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from models.settings import Settings
from models.sweeps.driver import Driver, PassReport

log = logging.getLogger(__name__)


class SweepDriver(threading.Thread):
    def __init__(self, settings: Settings, started: Callable[[], None]) -> None:
        super().__init__(name="remotefit-sweeps", daemon=True)
        self.driver = Driver(settings)
        self.period = settings.drive_seconds
        self.started = started  # wakes the dispatcher: new trials wait for a worker slot
        self._wake = threading.Event()
        self._stop = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def drive_once(self) -> PassReport:
        report = self.driver.drive()
        if report.started:
            self.started()
        return report

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.period)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.drive_once()
            except Exception:
                log.warning("sweep pass failed; retrying next period", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
