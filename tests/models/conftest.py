"""A database session on SQLite and on PostgreSQL, for the job-record tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models.db import get_sessionmaker
from tests.services import drop_postgres_database, postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on a fresh database of each kind (PostgreSQL: skipped if absent, not in CI)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        name = None
    else:
        name = f"remotefit_test_{uuid.uuid4().hex[:12]}"
        url = postgres_database(name)
    maker = get_sessionmaker(url)
    with maker() as db:
        yield db
    maker.kw["bind"].dispose()
    if name:
        drop_postgres_database(name)


@pytest.fixture
def pg_session() -> Iterator[Session]:
    """A session on a fresh PostgreSQL database, for what only PostgreSQL does."""
    name = f"remotefit_test_{uuid.uuid4().hex[:12]}"
    maker = get_sessionmaker(postgres_database(name))
    with maker() as db:
        yield db
    maker.kw["bind"].dispose()
    drop_postgres_database(name)


def database_url(session: Session) -> str:
    """The URL of the database ``session`` is on, password included."""
    return session.get_bind().engine.url.render_as_string(hide_password=False)
