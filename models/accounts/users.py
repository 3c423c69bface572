"""Users: add, list, disable, change their quotas and weight."""

from __future__ import annotations

import re

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from models.accounts import audit, changes
from models.errors import Conflict, InvalidRequest, NotFound
from models.tables import Dataset, Job, User

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
QUOTAS = ("max_running", "max_queued", "max_storage", "max_job_seconds")


class UserNotFound(NotFound):
    code = "user_not_found"


def any_users(session: Session) -> bool:
    """Whether the service has users (and so requires a token on every /v1 route)."""
    return bool(session.scalar(select(exists().where(User.id.is_not(None)))))


def get(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserNotFound(
            f"No user named {name!r}. List users with `remotefit users list`.", user=name
        )
    return user


def add(
    session: Session,
    name: str,
    actor: str,
    admin: bool = False,
    weight: float = 1.0,
    **quotas: int | None,
) -> User:
    """Create a user. The first admin adopts the jobs and datasets made before there were users.

    Raises:
        InvalidRequest: a bad name, weight or quota.
        Conflict: the name is taken.
    """
    if not NAME.match(name):
        raise InvalidRequest(
            "A user name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit. Received: {name!r}."
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"A user named {name!r} exists already; pick another name.", user=name)
    user = User(name=name, admin=admin)
    session.add(user)
    change(session, user, actor, weight=weight, **quotas)
    session.flush()
    audit.record(session, actor, "user.add", name, admin=admin)
    if admin:
        adopt_orphans(session, user)
    return user


def adopt_orphans(session: Session, admin: User) -> None:
    """Give an admin the jobs and datasets that have no owner (made before any user existed)."""
    for table in (Job, Dataset):
        session.execute(
            update(table)
            .where(table.owner.is_(None))
            .values(owner=admin.id)
            .execution_options(synchronize_session=False)
        )


def change(
    session: Session, user: User, actor: str, weight: float | None = None, **quotas: int | None
) -> None:
    """Set a user's weight and quotas (those given; a quota of None keeps the current one)."""
    if weight is not None:
        if not weight > 0:
            raise InvalidRequest(f"`weight` must be a positive number. Received: {weight!r}.")
        user.weight = weight
    for quota, value in quotas.items():
        if quota not in QUOTAS:
            raise InvalidRequest(f"Unknown quota {quota!r}; expected one of {QUOTAS}.")
        if value is None:
            continue
        if value < 0:
            raise InvalidRequest(f"`{quota}` must be 0 or more. Received: {value}.")
        setattr(user, quota, value)
    changed = {k: v for k, v in quotas.items() if v is not None}
    if user.id is not None and (changed or weight is not None):
        audit.record(session, actor, "user.set", user.name, weight=weight, **changed)


def disable(session: Session, name: str, actor: str) -> User:
    """Disable a user: their tokens stop working on the next request."""
    user = get(session, name)
    user.disabled = True
    audit.record(session, actor, "user.disable", name)
    changes.announce(session)
    return user


def listing(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.created_at, User.name)))
