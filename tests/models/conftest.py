"""A database session on SQLite and on PostgreSQL, for the job-record tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models.db import get_sessionmaker
from tests.services import drop_postgres_database, postgres_database


def _session_on(url: str) -> Iterator[Session]:
    maker = get_sessionmaker(url)
    with maker() as db:
        yield db
    maker.kw["bind"].dispose()


def _postgres_session() -> Iterator[Session]:
    """A session on a new PostgreSQL database, dropped afterwards (skipped if absent, not in CI)."""
    name = f"remotefit_test_{uuid.uuid4().hex[:12]}"
    yield from _session_on(postgres_database(name))
    drop_postgres_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on a fresh database of each kind."""
    if request.param == "sqlite":
        yield from _session_on(f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        yield from _postgres_session()


@pytest.fixture
def pg_session() -> Iterator[Session]:
    """A session on a fresh PostgreSQL database, for what only PostgreSQL does."""
    yield from _postgres_session()


def database_url(session: Session) -> str:
    """The URL of the database ``session`` is on, password included."""
    return session.get_bind().engine.url.render_as_string(hide_password=False)
