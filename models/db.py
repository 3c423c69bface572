"""Database engine and sessions, for SQLite (embedded) and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.errors import ServiceUnavailable
from models.tables import Base


def sqlite_shared_access(dbapi_connection: Any, _record: Any = None) -> None:
    """Let several processes use one SQLite file (the database, and the embedded broker's).

    WAL lets the API read while the worker writes; the busy timeout turns lock contention
    between processes into a short wait instead of "database is locked".
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    sqlite_shared_access(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _new_engine(database_url: str, **kwargs: Any) -> Engine:
    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def unpooled_engine(database_url: str) -> Engine:
    """An engine that keeps no connection between uses: safe in a process that forks."""
    from sqlalchemy.pool import NullPool

    return _new_engine(database_url, poolclass=NullPool)


def postgres_conninfo(database_url: str) -> str:
    """The libpq connection string of a PostgreSQL URL (``postgresql+psycopg://...`` too), for
    psycopg's own async connections: the API's job reads and event signals."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def get_engine(database_url: str) -> Engine:
    """One engine per URL and process; creates the SQLite folder and the tables if missing."""
    engine = _new_engine(database_url, pool_pre_ping=True)
    url = engine.url
    with engine.begin() as connection:
        if url.get_backend_name() == "postgresql":
            # The API and the workers start together on a fresh database: one at a time, or
            # create_all's check-then-create races ("relation ... already exists").
            connection.execute(text("SELECT pg_advisory_xact_lock(7370661)"))
        Base.metadata.create_all(connection)
        add_missing_columns(connection)
    return engine


def add_missing_columns(connection: Connection) -> None:
    """Add the nullable columns a newer remotefit defines to an older database's tables.

    ``create_all`` creates missing tables only. The columns added since (a job's and a
    dataset's ``owner``, say) are all nullable, so an ``ALTER TABLE ... ADD COLUMN`` is enough
    on SQLite and PostgreSQL alike; the rows they find are read as before (no owner: see
    ``models.accounts.users.adopt_orphans``).
    """
    existing = inspect(connection)
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(f"cannot add NOT NULL column {table.name}.{column.name}")
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


# Connections the API keeps open for reads. More requests than this wait for one to come back:
# with overflow connections, each burst of polling opened and closed connections (on
# PostgreSQL a backend process each), which cost more than the reads themselves.
READ_POOL_SIZE = 16


@lru_cache(maxsize=8)
def get_read_engine(database_url: str) -> Engine:
    """An engine for single reads on the API's hot paths: autocommit, no pre-ping.

    A status read is one SELECT; in a transaction with a pre-ping it took six round trips.
    After a database restart a stale connection fails one request (a 503), and SQLAlchemy
    then drops the whole pool. It serves the reads of event streams, and on SQLite the job
    status reads (on PostgreSQL, ``models.jobs.reads`` reads those without any engine).
    """
    get_engine(database_url)  # the tables exist
    return _new_engine(
        database_url,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
        pool_size=READ_POOL_SIZE,
        max_overflow=0,
    )


def unavailable(reason: object) -> ServiceUnavailable:
    """The 503 for a database that did not answer, and why."""
    return ServiceUnavailable(f"The database is unreachable or busy: {reason}. Try again shortly.")


@contextmanager
def read_errors() -> Iterator[None]:
    """Turn the database being unreachable during a read into a 503."""
    try:
        yield
    except OperationalError as error:
        raise unavailable(error.orig) from None


@lru_cache(maxsize=8)
def get_sessionmaker(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(database_url), expire_on_commit=False)


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Raises:
        ServiceUnavailable: the database cannot be reached.
    """
    try:
        session = get_sessionmaker(database_url)()
    except OperationalError as error:
        raise unavailable(error.orig) from None
    try:
        yield session
        session.commit()
    except OperationalError as error:
        session.rollback()
        raise unavailable(error.orig) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
