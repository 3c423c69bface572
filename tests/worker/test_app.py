"""The Celery app is configured for long jobs, and its messages carry only the job id."""

from __future__ import annotations

from pathlib import Path

from models.settings import Settings
from worker.app import TRAIN_TASK, create_celery


def test_long_job_settings_on_redis(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0", queue="q")
    conf = create_celery(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > settings.max_job_seconds
    assert conf.task_routes[TRAIN_TASK] == {"queue": "q"}
    assert conf.task_ignore_result  # job state lives in the database, not a result backend


def test_embedded_broker_is_sqlite_with_fast_polling(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    app = create_celery(settings)
    assert app.conf.broker_transport == "worker.sqlite_broker:Transport"
    assert app.conf.broker_transport_options == {"polling_interval": settings.broker_poll_seconds}
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.transport.polling_interval == settings.broker_poll_seconds


def test_task_is_registered_under_its_name(tmp_path: Path) -> None:
    app = create_celery(Settings(data_dir=tmp_path))
    app.loader.import_default_modules()
    assert TRAIN_TASK in app.tasks
