"""The API's memory of valid tokens: forgotten on time, on expiry, and on any announced change."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api import token_memory
from api.token_memory import TokenMemory
from models.access import Principal
from models.accounts import changes
from models.db import get_sessionmaker
from models.jobs.event_signals import PostgresSignals
from models.tables import utcnow
from tests.services import drop_postgres_database, postgres_database

BOB = Principal("u1", "bob", admin=False)


class Marker:
    def __init__(self) -> None:
        self.value: object = 0

    def __call__(self) -> object:
        return self.value


def test_a_valid_token_is_remembered_until_any_change_is_announced() -> None:
    marker = Marker()
    memory = TokenMemory(marker)
    memory.keep("rf_bob", BOB, marker())
    assert memory.get("rf_bob") is BOB and memory.get("rf_guess") is None
    marker.value = 1  # a token revoked or a user disabled, anywhere
    assert memory.get("rf_bob") is None and not memory.found
    memory.keep("rf_bob", BOB, 0)  # found valid before the change: not believed after it
    assert memory.get("rf_bob") is None
    marker.value = None  # no one can tell: nothing is remembered
    memory.keep("rf_bob", BOB, marker())
    assert not memory.found


def test_memory_ends_with_its_time_the_tokens_expiry_and_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory = TokenMemory(lambda: 0)
    memory.keep("rf_bob", BOB, 0)
    now = time.monotonic()
    monkeypatch.setattr(token_memory.time, "monotonic", lambda: now + token_memory.SECONDS + 0.01)
    assert memory.get("rf_bob") is None
    monkeypatch.undo()
    soon = Principal("u1", "bob", admin=False, expires_at=utcnow() + timedelta(seconds=0.2))
    memory.keep("rf_soon", soon, 0)
    assert memory.get("rf_soon") is soon
    time.sleep(0.25)
    assert memory.get("rf_soon") is None  # never past the token's own expiry
    memory.keep("rf_gone", Principal("u", "x", False, expires_at=utcnow()), 0)
    assert not memory.found
    for i in range(token_memory.SIZE + 10):
        memory.keep(f"rf_{i}", BOB, 0)
    assert len(memory.found) <= token_memory.SIZE
    assert all(b"rf_" not in key for key in memory.found)  # digests, not secrets


def test_sqlite_announces_through_a_stamp_replaced_after_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    stamp = changes.stamp_path(url)
    assert stamp is not None and stamp.parent == tmp_path
    before = changes.stamp(stamp)
    with get_sessionmaker(url)() as session:
        changes.announce(session)
        assert changes.stamp(stamp) == before  # not before the commit: the change is not seen yet
        session.rollback()
        session.commit()
        assert changes.stamp(stamp) == before  # rolled back: nothing to announce
        changes.announce(session)
        session.commit()
    after = changes.stamp(stamp)
    assert after != before
    with get_sessionmaker(url)() as session:
        changes.announce(session)
        session.commit()
    assert changes.stamp(stamp) != after
    assert changes.stamp_path("postgresql://localhost/x") is None


def test_postgresql_announces_by_notify_at_commit() -> None:
    name = f"remotefit_test_{uuid.uuid4().hex[:12]}"
    url = postgres_database(name)

    async def check() -> None:
        signals = PostgresSignals(url, (changes.CHANNEL,))
        assert signals.count(changes.CHANNEL) is None  # not listening yet: unknown
        signals.start()
        for _ in range(100):
            if signals.count(changes.CHANNEL) is not None:
                break
            await asyncio.sleep(0.05)
        heard = signals.count(changes.CHANNEL)
        assert heard is not None
        with Session(get_sessionmaker(url).kw["bind"]) as session:
            changes.announce(session)
            await asyncio.sleep(0.2)
            assert signals.count(changes.CHANNEL) == heard  # uncommitted: not delivered
            session.commit()
        for _ in range(100):
            if signals.count(changes.CHANNEL) != heard:
                break
            await asyncio.sleep(0.02)
        assert signals.count(changes.CHANNEL) == heard + 1
        await signals.close()

    try:
        asyncio.run(check())
    finally:
        drop_postgres_database(name)
