"""Enqueueing: the API sends a job id by task name and never waits on a task."""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerError

from models.errors import ServiceUnavailable
from worker.app import TRAIN_TASK

RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def enqueue(celery: Celery, queue: str, job_id: str) -> None:
    """Wake a worker for ``job_id``.

    Raises:
        ServiceUnavailable: the broker cannot be reached.
    """
    try:
        celery.send_task(
            TRAIN_TASK, args=[job_id], queue=queue, retry=True, retry_policy=RETRY_POLICY
        )
    except (BrokerError, OSError) as error:
        raise ServiceUnavailable(
            f"The job queue (broker) is unreachable: {error}. Nothing was queued; try again "
            "shortly."
        ) from None


def broker_reachable(celery: Celery) -> bool:
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def broker_backlog(celery: Celery, queue: str) -> int | None:
    """Messages waiting in ``queue``, or None when the broker cannot say."""
    try:
        with celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            try:
                declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            except ChannelError:
                # Redis keeps no empty list: a queue with nothing in it (all its messages
                # consumed, or lost in a restart) does not exist there, and holds 0 messages.
                return 0
            return int(declared.message_count)
    except Exception:
        return None
