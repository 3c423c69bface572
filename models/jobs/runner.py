"""Runs one job on a worker: claim it, train it, store its artifacts, record the outcome.

This is the whole of what a Celery task does, kept free of Celery so it reads (and is tested)
as plain code. It re-reads the job from the database each time it runs, so a message delivered
twice is harmless: the second delivery loses the claim and returns. A job whose worker died is
taken over and resumes from the checkpoint of its last whole epoch.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py

from models.access import SERVICE
from models.data import catalog
from models.data.store import LocalStore
from models.db import session_scope
from models.errors import ServiceError, without_paths
from models.jobs import initial_weights, lifecycle, records
from models.jobs.monitor import JobMonitor
from models.keras.compiling import compile_model
from models.keras.devices import devices, training_scope
from models.keras.model import build
from models.keras.training import ARTIFACTS, CHECKPOINT, save_artifacts, train_and_evaluate
from models.settings import Settings
from models.spec import JobCreate
from models.tables import Job

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)
EpochJudge = Callable[[int, dict[str, Any]], bool]
"""A sweep trial's pruning check: given a finished epoch (0-based) and its logs, True to stop."""
Pruning = Callable[[Settings, str], EpochJudge | None]
"""Makes the pruning check of a job (None for a job that is no sweep's trial)."""


def process_is_dead(worker: str) -> bool:
    """Whether ``host:pid`` names a process of this host that has ended."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker: only its lease can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Reporter:
    """Training's view of the job: cheap per batch, durable per epoch."""

    def __init__(
        self,
        settings: Settings,
        store: LocalStore,
        job_id: str,
        epochs: int,
        monitor: JobMonitor,
        worker: str,
        start_weights: list[Any],
        judge: EpochJudge | None = None,
    ) -> None:
        self.url = settings.database_url
        self.store = store
        self.job_id = job_id
        self.epochs = epochs
        self.monitor = monitor
        self.worker = worker
        self.checkpoint_seconds = settings.checkpoint_seconds
        self.last_checkpoint = time.monotonic()
        # The weights after the last whole epoch (at first, those training starts from), kept
        # in memory: a cancelled or timed-out job ends with them, whatever the checkpoint's age.
        self.epoch_weights = start_weights
        self.steps_per_execution: int | None = None
        self.judge = judge

    def execution(self, steps_per_execution: int) -> None:
        self.steps_per_execution = steps_per_execution
        self.monitor.update(steps_per_execution=steps_per_execution)

    def batch_end(self, step: int, steps: int | None, logs: dict[str, Any]) -> None:
        self.monitor.update(step=step, steps=steps, loss=logs.get("loss"))

    def epoch_end(
        self, model: keras.Model, epoch: int, logs: dict[str, Any], seconds: float
    ) -> None:
        steps = self.monitor.progress.get("steps")  # from the epoch's batches
        self.monitor.record_epoch(  # the monitor writes it
            epoch, self.epochs, logs, seconds, steps, self.steps_per_execution
        )
        self.epoch_weights = model.get_weights()
        self.monitor.update(epoch=epoch + 1, epochs=self.epochs, step=0)
        if self.judge is not None and self.judge(epoch, logs):
            self.monitor.stop_reason = self.monitor.stop_reason or "pruned"
            self.monitor.write_epochs()  # the pruned epoch is in the history before the end
            return
        # Writing a checkpoint costs about as much as a short epoch, so it is written at most
        # every checkpoint_seconds: a killed job loses at most that much training.
        if epoch + 1 < self.epochs and (
            time.monotonic() - self.last_checkpoint >= self.checkpoint_seconds
        ):
            # History first, then the checkpoint: a crash between the two retrains this epoch
            # on resume, and resume_point() cuts the history back so the epoch is recorded
            # once. Only while the job is still ours: a worker that was presumed lost and
            # taken over stops here instead of writing into the files of the run that resumed.
            self.monitor.write_epochs()
            if self.monitor.stop_reason != "lost":
                self.checkpoint(model, epoch + 1)

    def checkpoint(self, model: keras.Model, epoch: int) -> None:
        """Write weights and optimizer state after ``epoch`` whole epochs, atomically.

        Only while the job is still this worker's: the monitor learns of a takeover at its next
        tick, and the run that took over resumes from this very file.
        """
        if not _holds(self.url, self.job_id, self.worker):
            self.monitor.stop_reason = self.monitor.stop_reason or "lost"
            return
        with self.store.writing("jobs", self.job_id, CHECKPOINT) as path:
            model.save_weights(path)
            with h5py.File(path, "a") as file:
                file.attrs[EPOCH_ATTRIBUTE] = epoch  # the file says which epoch it holds
        with session_scope(self.url) as session:
            lifecycle.checkpointed(session, self.job_id, epoch, worker=self.worker)
        self.last_checkpoint = time.monotonic()

    def stop_reason(self) -> str | None:
        return self.monitor.stop_reason


EPOCH_ATTRIBUTE = "remotefit_epoch"


def saved_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file holds, as it recorded it (None without a file)."""
    try:
        with h5py.File(path, "r") as file:
            value = file.attrs.get(EPOCH_ATTRIBUTE)
    except (FileNotFoundError, OSError):
        return None
    return None if value is None else int(value)


class _ClaimLost(Exception):
    """The job was taken over, finished or deleted: this worker must write nothing more."""


def _holds(url: str, job_id: str, worker: str) -> bool:
    with session_scope(url) as session:
        return lifecycle.holds(session, job_id, worker)


def _error(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ServiceError):
        return {"type": type(error).__name__, "code": error.code, "message": error.message}
    message = without_paths(" ".join(str(error).split()))[:2000] or type(error).__name__
    return {"type": type(error).__name__, "code": "training_failed", "message": message}


def _restore(model: keras.Model, store: LocalStore, job_id: str) -> None:
    """Load the last whole epoch's weights and optimizer state, if there is a checkpoint."""
    path = store.path("jobs", job_id, CHECKPOINT)
    if not path.is_file():
        return
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _time_limit_error(seconds: float, epoch: int) -> dict[str, Any]:
    return {
        "type": "TimeLimitExceeded",
        "code": "time_limit",
        "message": f"The job ran past its time limit of {seconds:g} s and was stopped after "
        f"{epoch} whole epochs; their history and weights are kept. Give the job a larger "
        "`time_limit_s` (up to the server's REMOTEFIT_MAX_JOB_SECONDS) or fewer epochs.",
    }


def _keep_history(monitor: JobMonitor) -> None:
    """Write the epochs a failing job finished, before it ends (after that, none may be)."""
    try:
        monitor.write_epochs()
    except Exception:
        log.warning("job %s: its last epochs were not saved", monitor.job_id, exc_info=True)


def _forget_if_deleted(url: str, store: LocalStore, job_id: str) -> None:
    """Remove the files of a job deleted while it ran.

    The API removed the job's folder when it deleted the row, but this worker may have written
    a checkpoint or the artifacts into it since; once the row is gone, nothing else will.
    """
    try:
        with session_scope(url) as session:
            gone = session.get(Job, job_id) is None
        if gone:
            store.delete("jobs", job_id)
    except Exception:
        log.warning("job %s: could not check whether it was deleted", job_id, exc_info=True)


def run_job(
    job_id: str,
    settings: Settings,
    worker: str,
    ran_on: dict[str, Any] | None = None,
    pruning: Pruning | None = None,
) -> str:
    """Train job ``job_id`` if this worker wins its claim.

    Args:
        job_id: the job to run.
        settings: database, store and limits.
        worker: ``host:pid`` of this worker process, recorded on the job.
        ran_on: the worker (its Celery parent's ``host:pid``), its name and its devices.
        pruning: makes a sweep trial's epoch-end check (``models.sweeps.pruning``).

    Returns:
        The job's final status, or ``"skipped"``/``"lost"`` when another worker has it.
    """
    url = settings.database_url
    store = LocalStore(settings.store_root)
    # Read before the claim, so its takeover event and the resume below agree on the epoch.
    checkpoint_epoch = saved_epoch(store.path("jobs", job_id, CHECKPOINT))
    with session_scope(url) as session:
        claim = lifecycle.claim(
            session,
            job_id,
            worker,
            settings.max_attempts,
            settings.lease_seconds,
            process_is_dead,
            checkpoint_epoch,
            ran_on=ran_on,
        )
        if claim == "exhausted":
            store.remove_temporaries("jobs", job_id)
        if claim in ("skipped", "exhausted"):
            log.info("job %s: %s", job_id, claim)
            return claim
        job = records.get(session, job_id, SERVICE)
        session.refresh(job)  # the claim updated the row behind the session's back
        spec = JobCreate.model_validate(job.spec)
        initial_epoch = spec.fit.initial_epoch
        if job.attempts > 1:
            # An earlier attempt was lost: taken over here ("resumed") or re-queued by the
            # sweeper and claimed afresh ("claimed"). Either way go on from its checkpoint,
            # and drop any file it was killed while writing.
            store.remove_temporaries("jobs", job_id)
            initial_epoch = lifecycle.resume_point(
                session,
                job_id,
                initial_epoch,
                store.exists("jobs", job_id, CHECKPOINT),
                checkpoint_epoch,
            )
    time_limit = spec.time_limit_s or settings.job_seconds
    monitor = JobMonitor(settings, job_id, worker, time_limit, initial_epoch)
    monitor.update(epoch=initial_epoch, epochs=spec.fit.epochs)
    monitor.start()
    started = time.monotonic()
    try:
        if settings.distribute:
            log.info("job %s: training on %s", job_id, ", ".join(devices(settings)))
        with training_scope(settings):  # one device, or all of the worker's (--gpus)
            model = build(spec.model, settings)
            compile_model(model, spec.compile, settings)
            if spec.initial_weights is not None and initial_epoch == spec.fit.initial_epoch:
                with session_scope(url) as session:
                    initial_weights.load_into(model, session, store, spec.initial_weights)
            if initial_epoch > spec.fit.initial_epoch:
                _restore(model, store, job_id)
                log.info("job %s: resumed from epoch %d", job_id, initial_epoch)
        judge = None
        if pruning is not None:
            try:
                judge = pruning(settings, job_id)
            except Exception:  # a sweep's bookkeeping must not fail its trial: train unpruned
                log.warning("job %s: no pruning check", job_id, exc_info=True)
        reporter = _Reporter(
            settings, store, job_id, spec.fit.epochs, monitor, worker, model.get_weights(), judge
        )
        with session_scope(url) as session:
            outcome = train_and_evaluate(
                model,
                spec,
                lambda dataset_id: catalog.open_reader(session, store, dataset_id, SERVICE),
                reporter,
                initial_epoch,
                settings.stream_bytes,
            )
        monitor.write_epochs()  # the whole history, before the job can end
        stop = monitor.stop_reason
        if stop == "cancelled" and not outcome.stopped:
            stop = None  # asked after the last epoch: the job is trained, and succeeds
        if stop == "lost":
            log.info("job %s: no longer ours (deleted or taken over)", job_id)
            return "lost"
        if stop:
            model.set_weights(reporter.epoch_weights)  # the last whole epoch, not half a one

        def writing(name: str) -> Any:
            if not _holds(url, job_id, worker):  # before each file: another run may own it
                raise _ClaimLost(job_id)
            return store.writing("jobs", job_id, name)

        artifacts = list(save_artifacts(model, writing))
    except _ClaimLost:
        log.info("job %s: no longer ours before its artifacts were written", job_id)
        return "lost"
    except Exception as error:
        log.exception("job %s failed", job_id)
        _keep_history(monitor)
        with session_scope(url) as session:
            lifecycle.finish(session, job_id, "failed", error=_error(error), worker=worker)
        return "failed"
    finally:
        monitor.stop()
        _forget_if_deleted(url, store, job_id)
    status, failure = "succeeded", None
    if stop in ("cancelled", "pruned"):
        status = stop
    elif stop == "time_limit":
        status = "failed"
        failure = _time_limit_error(time_limit, monitor.progress.get("epoch", 0))
    with session_scope(url) as session:
        recorded = lifecycle.finish(
            session,
            job_id,
            status,
            evaluation=outcome.evaluation,
            error=failure,
            artifacts=artifacts,
            artifact_bytes=sum(
                store.path("jobs", job_id, ARTIFACTS[key]).stat().st_size for key in artifacts
            ),
            worker=worker,
        )
    if not recorded:
        log.info("job %s: no longer ours when it finished; its checkpoint is left", job_id)
        return "lost"
    store.path("jobs", job_id, CHECKPOINT).unlink(missing_ok=True)
    log.info("job %s %s in %.2fs", job_id, status, time.monotonic() - started)
    return status
