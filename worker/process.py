"""Set-up of a worker's pool process: GPU pinning, memory growth, TensorFlow warm-up.

TensorFlow is not fork-safe, so the Celery parent never imports it; each pool process imports
it once, when it starts, and keeps it warm for every job it runs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_process_init

log = logging.getLogger(__name__)


def configure_devices() -> list[str]:
    """Import TensorFlow, enable memory growth on every visible GPU; returns their names.

    Pinning to GPUs happens before this, through ``CUDA_VISIBLE_DEVICES`` (set by
    ``remotefit worker --gpu N`` or ``--gpus 0,1``), so TensorFlow only ever sees those.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    from models.keras.devices import split_cpu
    from models.settings import get_settings

    split_cpu(get_settings().cpu_devices)  # before anything initialises TensorFlow's devices
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    import keras  # noqa: F401  (warm: the first job should not pay the import)

    return [gpu.name for gpu in gpus]


def forget_inherited_connections() -> None:
    """Drop the database connections this pool process inherited from its parent.

    A connection is a socket and a session on the server: used from two processes at once (or
    from a new pool process after the previous one was killed mid-transaction) it breaks, so
    each pool process opens its own (SQLAlchemy's ``dispose(close=False)`` after a fork).
    """
    from models.db import get_engine
    from models.settings import get_settings

    get_engine(get_settings().database_url).dispose(close=False)


DEVICES: list[dict[str, Any]] = []
"""What this pool process trains on (``worker.device_check.device_list``), once it started."""


def report_devices(devices: list[dict[str, Any]]) -> None:
    """Tell ``GET /v1/workers`` what this worker trains on (its parent is the worker)."""
    import socket

    from models.db import session_scope
    from models.jobs.workers import report_devices as record
    from models.settings import get_settings

    try:
        with session_scope(get_settings().database_url) as session:
            record(session, f"{socket.gethostname()}:{os.getppid()}", devices)
    except Exception:  # the list lacks its devices; training goes on
        log.warning("could not report this worker's devices", exc_info=True)


@worker_process_init.connect
def _on_process_start(**_: Any) -> None:
    from worker.device_check import describe, device_list, probe

    forget_inherited_connections()
    configure_devices()
    report = probe()
    log.info("worker process %s ready: %s", os.getpid(), describe(report))
    DEVICES[:] = device_list(report)
    report_devices(DEVICES)
