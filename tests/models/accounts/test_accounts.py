"""Users, tokens and quotas on SQLite and PostgreSQL; the schema of an older database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from models.access import SERVICE
from models.accounts import keys, quotas, tokens, users
from models.db import add_missing_columns
from models.errors import Conflict, Forbidden, InvalidRequest, QuotaExceeded
from models.jobs import records
from models.settings import Settings
from models.tables import ApiToken, Dataset, Job, utcnow

KEY = b"k" * 32


def test_a_token_is_found_only_by_its_secret(session: Session) -> None:
    ana = users.add(session, "ana", "test")
    token, secret = tokens.create(session, ana, KEY, "test", ["jobs:read"])
    session.commit()
    assert secret.startswith("rf_") and len(secret) >= 3 + 43
    stored = session.get(ApiToken, token.id)
    assert stored is not None and secret not in stored.digest
    assert stored.digest == keys.digest(KEY, secret)
    found = tokens.authenticate(session, KEY, secret)
    assert found is not None and found.name == "ana" and found.scopes == {"jobs:read"}
    assert tokens.authenticate(session, b"another key", secret) is None
    assert tokens.authenticate(session, KEY, secret[:-1] + "x") is None


def test_revoked_expired_and_disabled_fail_at_once(session: Session) -> None:
    ana = users.add(session, "ana", "test")
    revoked, first = tokens.create(session, ana, KEY, "test")
    expired, second = tokens.create(session, ana, KEY, "test", expires_days=1)
    _, third = tokens.create(session, ana, KEY, "test")
    session.commit()
    tokens.revoke(session, revoked.id, "test")
    expired.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert tokens.authenticate(session, KEY, first) is None
    assert tokens.authenticate(session, KEY, second) is None
    assert tokens.authenticate(session, KEY, third) is not None
    users.disable(session, "ana", "test")
    session.commit()
    assert tokens.authenticate(session, KEY, third) is None


def test_a_token_never_holds_more_than_its_user(session: Session) -> None:
    bob = users.add(session, "bob", "test")
    with pytest.raises(Forbidden, match="admin"):
        tokens.create(session, bob, KEY, "test", ["admin"])
    with pytest.raises(InvalidRequest, match="Unknown scopes"):
        tokens.create(session, bob, KEY, "test", ["jobs:everything"])
    with pytest.raises(Forbidden):
        tokens.create(session, bob, KEY, "test", ["jobs:write"], allowed=frozenset({"jobs:read"}))
    with pytest.raises(Conflict):
        users.add(session, "bob", "test")
    with pytest.raises(InvalidRequest, match="user name"):
        users.add(session, "../bob", "test")


def test_the_longest_job_is_a_quota(session: Session) -> None:
    settings = Settings(job_seconds=3600)
    ana = users.add(session, "ana", "test", max_job_seconds=600)
    session.commit()
    who = tokens.authenticate(session, KEY, tokens.create(session, ana, KEY, "test")[1])
    assert who is not None
    assert quotas.check_submit(session, who, settings, None) == 600  # the user's, not 3600
    assert quotas.check_submit(session, who, settings, 60) == 60
    with pytest.raises(QuotaExceeded, match="max_job_seconds") as refused:
        quotas.check_submit(session, who, settings, 601)
    assert refused.value.detail()["limit"] == 600


def test_the_first_admin_adopts_orphans(session: Session) -> None:
    orphan = records.create(session, {"fit": {"epochs": 1}}, None)
    session.commit()
    admin = users.add(session, "root", "test", admin=True)
    session.commit()
    assert session.get(Job, orphan.id, populate_existing=True).owner == admin.id  # type: ignore[union-attr]


def test_quotas_refuse_with_what_is_used(session: Session) -> None:
    settings = Settings(max_queued=1, max_storage=100)
    ana = users.add(session, "ana", "test")
    session.commit()
    who = tokens.authenticate(session, KEY, tokens.create(session, ana, KEY, "test")[1])
    assert who is not None
    assert quotas.check_submit(session, who, settings, None) is None
    records.create(session, {"fit": {"epochs": 1}}, None, ana.id)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.check_submit(session, who, settings, None)
    assert refused.value.detail()["quota"] == "max_queued"
    assert (refused.value.detail()["limit"], refused.value.detail()["used"]) == (1, 1)
    session.add(Dataset(filename="d.npz", format="npz", size_bytes=60, arrays=[], owner=ana.id))
    session.flush()
    with pytest.raises(QuotaExceeded, match="max_storage"):
        quotas.check_storage(session, who, settings, 41)
    quotas.check_storage(session, who, settings, 40)  # exactly at the limit
    trained = records.create(session, {"fit": {"epochs": 1}}, None, ana.id)
    trained.artifact_bytes = 30  # a finished job's weights count too
    session.flush()
    with pytest.raises(QuotaExceeded, match="max_storage"):
        quotas.check_storage(session, who, settings, 11)
    quotas.check_storage(session, SERVICE, settings, 10**12)  # the service has no quota
    session.execute(update(Job).values(status="running"))
    assert quotas.report(session, ana, settings)["max_running"] == {"limit": 4, "used": 2}


def test_an_older_database_gets_the_new_columns(session: Session) -> None:
    """A database made before teams: no owner, no dispatch mark; the service adds them."""
    connection = session.connection()
    for table, column in (("jobs", "owner"), ("jobs", "dispatched_at"), ("datasets", "owner")):
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{table}_{column}")
        connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    session.commit()
    add_missing_columns(session.connection())
    session.commit()
    job = records.create(session, {"fit": {"epochs": 1}}, None, "someone")
    session.commit()
    assert session.get(Job, job.id, populate_existing=True).owner == "someone"  # type: ignore[union-attr]


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = keys.server_key(settings)
    assert keys.server_key(settings) == first
    assert (tmp_path / keys.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert keys.server_key(Settings(data_dir=tmp_path, secret_key="s")) == b"s"
