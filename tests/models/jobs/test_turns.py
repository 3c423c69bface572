"""Fair turns over a real database with a fake clock: who gets the next free worker slot."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from models.jobs import records
from models.jobs.turns import Turn, decayed, dispatch, next_turn
from models.jobs.workers import report_slots
from models.settings import Settings
from models.tables import Job, User, WorkerSlots, utcnow

SPEC = {"fit": {"epochs": 1}}
START = datetime(2026, 1, 1, 12, 0, tzinfo=utcnow().tzinfo)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def tick(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _settings(**values: object) -> Settings:
    return Settings(lease_seconds=60, **values)  # type: ignore[arg-type]


def _user(session: Session, name: str, **fields: object) -> str:
    user = User(name=name, **fields)
    session.add(user)
    session.flush()
    return user.id


def _queue(session: Session, owner: str | None, count: int, clock: Clock) -> list[str]:
    ids = []
    for _ in range(count):
        job = records.create(session, SPEC, None, owner)
        job.created_at = clock.tick(0.001)
        ids.append(job.id)
    session.commit()
    return ids


def _slots(session: Session, slots: int, clock: Clock, worker: str = "w1") -> None:
    report_slots(session, worker, slots, clock.now)
    session.commit()


def _dispatch(session: Session, settings: Settings, clock: Clock) -> list[str]:
    sent: list[str] = []
    dispatch(session, settings, sent.append, clock.now)
    return sent


def _run(session: Session, job_id: str, started: datetime, finished: datetime | None) -> None:
    values: dict[str, object] = {"status": "running", "started_at": started}
    if finished is not None:
        values.update(status="succeeded", finished_at=finished)
    session.execute(update(Job).where(Job.id == job_id).values(**values))
    session.commit()


def test_a_single_job_does_not_wait_behind_a_long_queue(session: Session) -> None:
    clock, settings = Clock(), _settings()
    a, b = _user(session, "a"), _user(session, "b")
    _slots(session, 1, clock)
    a_jobs = _queue(session, a, 10, clock)
    first = _dispatch(session, settings, clock)
    assert first == [a_jobs[0]]
    (b_job,) = _queue(session, b, 1, clock)
    assert _dispatch(session, settings, clock) == []  # the one slot is taken
    _run(session, first[0], clock.now, clock.tick(60))
    _slots(session, 1, clock)  # the worker's heartbeat
    assert _dispatch(session, settings, clock) == [b_job]  # B's job is the second to run


def test_weights_share_the_slots_in_proportion(session: Session) -> None:
    clock, settings = Clock(), _settings()
    a, b = _user(session, "a", weight=2.0), _user(session, "b", weight=1.0)
    _queue(session, a, 300, clock)
    _queue(session, b, 300, clock)
    owners = {}
    for _ in range(300):
        _slots(session, 1, clock)
        (job_id,) = _dispatch(session, settings, clock)
        owners[job_id] = session.get(Job, job_id).owner  # type: ignore[union-attr]
        _run(session, job_id, clock.now, clock.tick(60))
    share = sum(owner == a for owner in owners.values()) / len(owners)
    assert share == pytest.approx(2 / 3, abs=0.05)


def test_max_running_is_a_cap_even_with_idle_slots(session: Session) -> None:
    clock, settings = Clock(), _settings()
    a = _user(session, "a", max_running=1)
    _slots(session, 3, clock)
    _queue(session, a, 3, clock)
    assert len(_dispatch(session, settings, clock)) == 1
    assert _dispatch(session, settings, clock) == []
    b = _user(session, "b")
    _queue(session, b, 3, clock)
    assert len(_dispatch(session, settings, clock)) == 2  # the idle slots go to B


def test_gpu_time_decays_with_its_half_life(session: Session) -> None:
    clock, settings = Clock(), _settings(usage_half_life_seconds=3600)
    a, b = _user(session, "a"), _user(session, "b")
    (old,) = _queue(session, a, 1, clock)
    _run(session, old, clock.now, clock.tick(8 * 3600))  # A trained 8 h...
    clock.tick(5 * 3600)  # ...5 half-lives ago: a quarter of an hour now
    (recent,) = _queue(session, b, 1, clock)
    _run(session, recent, clock.now, clock.tick(3600))  # B trained 1 h just now
    b_next = _queue(session, b, 1, clock)
    a_next = _queue(session, a, 1, clock)
    _slots(session, 1, clock)
    assert _dispatch(session, settings, clock) == a_next
    assert decayed(3600, 3600, 3600) == pytest.approx(1800)
    assert b_next


def test_a_restarted_dispatcher_sends_no_job_twice(session: Session) -> None:
    clock, settings = Clock(), _settings()
    a = _user(session, "a")
    _slots(session, 2, clock)
    jobs = _queue(session, a, 3, clock)

    def crash(_: str) -> None:
        raise RuntimeError("the dispatcher died here, after marking")

    with pytest.raises(RuntimeError):
        dispatch(session, settings, crash, clock.now)
    session.rollback()
    _slots(session, 4, clock)  # more room now: still, the two marked are not sent again
    assert _dispatch(session, settings, clock) == [jobs[2]]
    assert _dispatch(session, settings, clock) == []


def test_no_live_worker_no_dispatch(session: Session) -> None:
    clock, settings = Clock(), _settings()
    _queue(session, None, 1, clock)
    assert _dispatch(session, settings, clock) == []
    _slots(session, 1, clock)
    clock.tick(61)  # its heartbeat is older than the lease
    assert _dispatch(session, settings, clock) == []
    _slots(session, 1, clock, "w2")
    assert len(_dispatch(session, settings, clock)) == 1
    assert session.query(WorkerSlots).count() == 2


def test_next_turn_prefers_fewest_running_per_weight() -> None:
    turns = [
        Turn("a", 2.0, 2, 0.0, START),  # 1 per unit of weight
        Turn("b", 1.0, 1, 0.0, START),  # 1 per unit of weight, more usage
        Turn("c", 1.0, 0, 9e9, START, max_running=0),  # capped
    ]
    assert next_turn(turns) == turns[0]
    assert next_turn([turns[2]]) is None


def test_jobs_of_the_service_itself_take_turns_too(session: Session) -> None:
    """Jobs made before there were users (no owner) share the slots with users' jobs."""
    clock, settings = Clock(), _settings()
    a = _user(session, "a")
    orphans = _queue(session, None, 2, clock)
    (mine,) = _queue(session, a, 1, clock)
    _slots(session, 1, clock)
    (first,) = _dispatch(session, settings, clock)
    assert first == orphans[0]  # the oldest, nobody having run anything
    _run(session, first, clock.now, clock.tick(60))
    _slots(session, 1, clock)
    assert _dispatch(session, settings, clock) == [mine]  # then the user who has not run
