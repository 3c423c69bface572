"""Celery tasks: a few lines around ``models.job_runner``."""

from __future__ import annotations

import socket

from celery import shared_task

from worker.app import TRAIN_TASK


@shared_task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True)
def train(job_id: str) -> str:
    """Train one job by id; the job row says what to do and records what happened."""
    import os

    from models.job_runner import run_job
    from models.settings import get_settings

    return run_job(job_id, get_settings(), f"{socket.gethostname()}:{os.getpid()}")
