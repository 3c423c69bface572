"""The Celery app, configured from settings for long training jobs.

``celery -A worker.app:celery_app worker`` finds the app through the module ``__getattr__``
below, so importing this module reads no settings and connects to nothing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery

from models.settings import Settings, get_settings

TRAIN_TASK = "remotefit.train"


def create_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings``: the broker carries job ids only; results live in the DB."""
    broker_url = settings.broker_url
    transport_options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    if settings.embedded:
        # The SQL transport has no visibility timeout: unacked messages return on disconnect.
        broker_url = broker_url.removeprefix("sqla+")
        transport_options = {"polling_interval": settings.broker_poll_seconds}
    app = Celery(
        "remotefit", broker=broker_url, include=["worker.tasks", "worker.process", "worker.slots"]
    )
    app.conf.update(
        broker_transport="worker.sqlite_broker:Transport" if settings.embedded else None,
        task_default_queue=settings.queue,
        task_routes={TRAIN_TASK: {"queue": settings.queue}},
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # Long jobs: ack only after the job ran, put it back if the worker process dies, and
        # take one message at a time so a busy worker holds no job another could run.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A pool process killed mid-job (out of memory, say) hands its message back after this
        # wait rather than Celery's 10 s: a late result making it a duplicate is harmless, as
        # the job row turns a second delivery of a finished job into a no-op.
        worker_lost_wait=2.0,
        # A new pool process imports TensorFlow (and initialises CUDA) before it reports up;
        # that can take far longer than Celery's 4 s, which would kill and restart it forever.
        worker_proc_alive_timeout=120.0,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_time_limit=None,
        # Remote control needs a fanout exchange, which the SQLite transport lacks.
        worker_enable_remote_control=not settings.embedded,
    )
    return app


@lru_cache(maxsize=1)
def default_app() -> Celery:
    return create_celery(get_settings())


def __getattr__(name: str) -> Any:
    if name in ("celery_app", "app"):
        return default_app()
    raise AttributeError(name)
