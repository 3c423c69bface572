"""Which devices a job trains on: the one the worker sees, or all of them at once.

A worker started with ``--gpu N`` trains each job on GPU N alone; with ``--gpus 0,1`` it
trains each job under ``tf.distribute.MirroredStrategy`` over those GPUs: each step splits the
global batch between them and adds up their gradients, so the same job fits bigger or faster.
``REMOTEFIT_CPU_DEVICES`` splits the CPU into logical devices, on which the same strategy code
runs on a machine without GPUs (how it is tested here).
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

from models.settings import Settings


def split_cpu(count: int) -> None:
    """Make TensorFlow see ``count`` logical CPU devices; before it has initialised any."""
    if count <= 1:
        return
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")[:1]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


@cache
def _strategy() -> Any:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([device.name for device in gpus])
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    # NCCL, the GPUs' all-reduce, has no CPU kernels: reduce on one device instead.
    return tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def devices(settings: Settings) -> list[str]:
    """The devices each step of a job runs on, or ``[]`` for TensorFlow's default placement."""
    return list(_strategy().extended.worker_devices) if settings.distribute else []


def training_scope(settings: Settings) -> AbstractContextManager[Any]:
    """Where a job's model is built and compiled: one device, or a MirroredStrategy's scope."""
    if not settings.distribute:
        return contextlib.nullcontext()
    return _strategy().scope()
