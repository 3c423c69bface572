"""Announcing that a token or a user stopped being valid, whichever process changed it.

The API remembers the tokens it found valid (``api.token_memory``), so that a status poll pays
no database lookup; a revocation or a disabled user must still count from the next request,
whether the API, the CLI or another API process made it. So each such change is announced as
it commits, and the API forgets every token it remembers when it hears of one:

- on PostgreSQL, ``NOTIFY remotefit_accounts`` in the changing transaction (PostgreSQL delivers
  it as that transaction commits; the API listens, ``models.jobs.event_signals``);
- on SQLite, whose API shares the machine with the database file, a stamp file beside the
  database is replaced after the commit; the API compares its inode and time on each request.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "remotefit_accounts"
_PENDING = "remotefit_accounts_changed"


def stamp_path(database_url: str) -> Path | None:
    """The SQLite database's stamp file, or None (PostgreSQL, or a database in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".accounts")


def announce(session: Session) -> None:
    """Tell every API process, once ``session`` commits, that tokens it found valid may not be."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, "")))
    else:
        session.connection()  # within a transaction, so that a rollback drops it
        session.info[_PENDING] = True  # the stamp is replaced after the commit, not before


@event.listens_for(Session, "after_commit")
def _replace_stamp(session: Session) -> None:
    if not session.info.pop(_PENDING, False):
        return
    path = stamp_path(session.get_bind().engine.url.render_as_string(hide_password=False))
    if path is not None:
        temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
        temporary.write_text(uuid.uuid4().hex)
        os.replace(temporary, path)  # a new inode: a change no clock resolution can hide


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)  # rolled back: nothing changed


def stamp(path: Path) -> Any:
    """What the stamp file is now: changes whenever an announcement has committed."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (found.st_ino, found.st_mtime_ns)
