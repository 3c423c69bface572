"""A thread of the API that makes one pass every period, or at once when woken."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """Runs ``once()`` every ``period`` seconds, or at once after ``wake()``, until ``stop()``.

    A pass that fails is logged and tried again at the next period: what it left undone is
    read from the database again then.
    """

    def __init__(self, name: str, period: float) -> None:
        super().__init__(name=name, daemon=True)
        self.period = period
        self._wake = threading.Event()
        self._stop = threading.Event()

    def once(self) -> object:
        raise NotImplementedError

    def wake(self) -> None:
        """Something changed: make a pass now rather than at the next period."""
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.period)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.once()
            except Exception:
                log.warning("%s: pass failed; retrying next period", self.name, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
