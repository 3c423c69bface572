"""Celery tasks: a few lines around ``models.jobs.runner``."""

from __future__ import annotations

import socket

from celery import Task, shared_task

from worker.app import TRAIN_TASK
from worker.shallow import call_on_fresh_thread


@shared_task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True, bind=True)
def train(self: Task, job_id: str) -> str:
    """Train one job by id; the job row says what to do and records what happened.

    The job runs on a thread of its own, below none of Celery's frames: TensorFlow's time per
    step grows with the depth of the Python stack it trains under (see ``worker.shallow``).
    """
    import os

    from models.jobs.runner import run_job
    from models.settings import get_settings
    from models.sweeps.pruning import judge_for
    from worker.process import DEVICES

    host = socket.gethostname()
    # The worker is this pool process's parent (worker.slots); the job keeps what it ran on.
    ran_on = {"worker": f"{host}:{os.getppid()}", "name": self.request.hostname, "devices": DEVICES}
    return call_on_fresh_thread(
        run_job,
        job_id,
        get_settings(),
        f"{host}:{os.getpid()}",
        ran_on,
        judge_for,
        name=f"job-{job_id[:8]}",
    )
