"""A job's companion thread on the worker: heartbeat, progress, history, cancel, time limit.

All database I/O of a running job happens here, so the training thread only sets a few
attributes per batch, hands over each epoch's logs and reads one flag. The epochs handed over
are written with each heartbeat, all of them in one transaction: a write is Python work, and
even on this thread it holds the GIL the training thread needs between TensorFlow's calls.
(Written one by one, the 20 epochs of the seed example cost 0.16 s of its 2.3 s on the
training thread; from this thread, one transaction each still cost the worker 0.17 CPU-s more
per job than writing them with the heartbeat.)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from models.db import session_scope
from models.jobs import lifecycle, records
from models.jobs.gpu_telemetry import GpuTelemetry
from models.settings import Settings

log = logging.getLogger(__name__)


class JobMonitor(threading.Thread):
    """Renews the job's lease, publishes progress, and decides when training must stop.

    ``stop_reason`` becomes ``"cancelled"`` (cancel requested or job deleted), ``"time_limit"``
    or ``"lost"`` (another worker took the job over); the training callback polls it.
    """

    def __init__(
        self, settings: Settings, job_id: str, worker: str, time_limit: float, initial_epoch: int
    ) -> None:
        super().__init__(name=f"monitor-{job_id[:8]}", daemon=True)
        self.url = settings.database_url
        self.period = settings.heartbeat_seconds
        self.cancel_poll = min(settings.cancel_poll_seconds, settings.heartbeat_seconds)
        self.job_id = job_id
        self.worker = worker
        self.started = time.monotonic()
        self.deadline = self.started + time_limit
        self.initial_epoch = initial_epoch
        self.progress: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self._published: dict[str, Any] = {}
        self._epochs: list[lifecycle.EpochLogs] = []  # recorded, not yet written
        # Epochs are written by this thread, or by the training thread when it must know they
        # are (before a checkpoint): one writer at a time, in order, so event ids, drawn from one
        # sequence, commit in order and an SSE reader never skips one.
        self._write_lock = threading.Lock()
        self._finished = threading.Event()
        self.gpu = GpuTelemetry.open()

    def update(self, **progress: Any) -> None:
        """Called from the training thread: cheap, no I/O."""
        self.progress = {**self.progress, **progress}

    def record_epoch(
        self,
        epoch: int,
        epochs: int,
        logs: dict[str, Any],
        seconds: float | None = None,
        steps: int | None = None,
        steps_per_execution: int | None = None,
    ) -> None:
        """Called from the training thread after a whole epoch: queued, written at the next
        heartbeat (or by ``write_epochs`` when training must know it is written)."""
        self._epochs.append(
            lifecycle.EpochLogs(epoch, epochs, dict(logs), seconds, steps, steps_per_execution)
        )

    def write_epochs(self) -> None:
        """Write the epochs recorded so far into the job's history, in one transaction.

        An epoch stays queued until it is written, so a database hiccup delays it, never loses
        it. A job that is no longer this worker's gets ``stop_reason`` ``"lost"`` and none of
        them: a worker that was taken over must not write into the history of the run that
        resumed its job.
        """
        with self._write_lock:
            queued = self._epochs[:]  # the training thread only appends
            if not queued:
                return
            with session_scope(self.url) as session:
                ours = lifecycle.record_epochs(session, self.job_id, queued, worker=self.worker)
            if ours is None:
                self.stop_reason = self.stop_reason or "lost"
                self._epochs.clear()
                return
            del self._epochs[: len(queued)]

    def run(self) -> None:
        # Between two heartbeats the cancel flag alone is read, every cancel_poll_seconds: one
        # indexed read, so that a cancel lands well within a second of being asked for.
        next_beat = time.monotonic() + self.period
        while not self._finished.wait(
            max(0.0, min(self.cancel_poll, next_beat - time.monotonic()))
        ):
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.period
                    self.tick()
                elif self.stop_reason is None:
                    self.poll_cancel()
            except Exception:  # a database hiccup must not kill training; the next turn retries
                log.warning("job %s: heartbeat failed", self.job_id, exc_info=True)

    def poll_cancel(self) -> None:
        """Read the job's cancel flag (set by a cancel or a delete) and stop training on it."""
        with session_scope(self.url) as session:
            if lifecycle.cancel_requested(session, self.job_id):
                self.stop_reason = self.stop_reason or "cancelled"

    def tick(self) -> None:
        """Write the epochs so far, renew the lease with the progress, read the cancel flag."""
        progress = self._snapshot()  # first: the epochs it counts are queued by now
        self.write_epochs()
        changed = progress != self._published
        with self._write_lock, session_scope(self.url) as session:
            cancel = lifecycle.heartbeat(
                session, self.job_id, self.worker, progress if changed else None
            )
        if changed:
            self._published = progress
        if cancel is None:
            self.stop_reason = self.stop_reason or "lost"
        elif cancel:
            self.stop_reason = self.stop_reason or "cancelled"
        elif time.monotonic() > self.deadline:
            self.stop_reason = self.stop_reason or "time_limit"

    def _snapshot(self) -> dict[str, Any]:
        if not self.progress:
            return {}
        # Every progress event has the same fields, the batch ones empty before the first batch.
        progress = {
            "step": 0,
            "steps": None,
            "steps_per_execution": None,
            "loss": None,
            **self.progress,
        }
        if progress.get("loss") is not None:
            progress["loss"] = records.clean_number(progress["loss"])  # a tensor until read here
        elapsed = time.monotonic() - self.started
        progress["elapsed_s"] = round(elapsed, 1)
        progress["eta_s"] = _eta(progress, self.initial_epoch, elapsed)
        gpu = self.gpu.sample()
        if gpu is not None:  # absent, not zero, on a CPU worker
            progress["gpu"] = gpu
        return progress

    def stop(self) -> None:
        """Stop the thread, then publish the final progress once (before the job's end)."""
        self._finished.set()
        self.join(timeout=10)
        try:
            self.tick()
        except Exception:
            log.warning("job %s: final progress not saved", self.job_id, exc_info=True)


def _eta(progress: dict[str, Any], initial_epoch: int, elapsed: float) -> float | None:
    """Seconds left, from the fraction of this run's epochs and steps done so far."""
    total = progress.get("epochs", 0) - initial_epoch
    steps = progress.get("steps") or 0
    done = progress.get("epoch", 0) - initial_epoch
    if steps:
        done += progress.get("step", 0) / steps
    if total <= 0 or done <= 0:
        return None
    fraction = min(done / total, 1.0)
    return round(elapsed * (1 - fraction) / fraction, 1)
