"""The API's sweep driver thread (see ``models.sweeps.driver``): every
``REMOTEFIT_DRIVE_SECONDS``, or at once when a sweep is submitted or cancelled."""

from __future__ import annotations

from collections.abc import Callable

from api.periodic import Periodic
from models.settings import Settings
from models.sweeps.driver import Driver, PassReport


class SweepDriver(Periodic):
    def __init__(self, settings: Settings, started: Callable[[], None]) -> None:
        super().__init__("remotefit-sweeps", settings.drive_seconds)
        self.driver = Driver(settings)
        self.started = started  # wakes the dispatcher: new trials wait for a worker slot

    def once(self) -> PassReport:
        report = self.driver.drive()
        if report.started:
            self.started()
        return report
