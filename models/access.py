"""Who is asking, and the one place that hands objects out by owner.

Every read of a job or dataset by id goes through :func:`fetch`; every list through
:func:`visible`. Another user's object is answered exactly as a missing id is (the caller's
``missing`` error), so ids of other users' objects cannot even be confirmed to exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, or_
from sqlalchemy.orm import Session

from models.errors import Conflict, NotFound

SCOPES = ("jobs:read", "jobs:write", "datasets:read", "datasets:write", "admin")
"""Every scope a token can hold; ``admin`` implies the others."""


@dataclass(frozen=True)
class Principal:
    """The caller: a user (``user_id``), or the service itself (``user_id`` None)."""

    user_id: str | None
    name: str
    admin: bool
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    token_id: str | None = None
    expires_at: datetime | None = None  # the token's expiry, if it has one

    def may(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def sees(self, owner: str | None, shared: bool = False, write: bool = False) -> bool:
        """Whether this caller may read (or, with ``write``, change) an object of ``owner``."""
        return self.admin or self.user_id is None or owner == self.user_id or (shared and not write)


SERVICE = Principal(None, "remotefit", admin=True)
"""The service itself: workers, the sweeper, the dispatcher, and an open server (no users)."""

Owned = TypeVar("Owned")


def fetch(
    session: Session,
    model: type[Owned],
    object_id: str,
    who: Principal,
    missing: Callable[[str], NotFound],
    write: bool = False,
    **options: Any,
) -> Owned:
    """The object ``object_id`` of ``model`` if ``who`` may see it, else ``missing(object_id)``.

    Raises:
        NotFound: no such object, or another user's (the same error either way).
    """
    found = session.get(model, object_id, **options)
    if found is None or not who.sees(
        getattr(found, "owner", None), bool(getattr(found, "shared", False)), write
    ):
        raise missing(object_id)
    return found


def visible(query: Select[Any], model: Any, who: Principal, everyone: bool = False) -> Select[Any]:
    """``query`` narrowed to ``who``'s own objects (an admin's ``everyone`` sees all).

    The service itself (no users) sees all; ``shared`` datasets are not listed as one's own.
    """
    if who.user_id is None or (who.admin and everyone):
        return query
    return query.where(model.owner == who.user_id)


def in_use(what: str, users: Sequence[Any], who: Principal) -> Conflict:
    """The 409 for an object unfinished jobs still need: ``what`` (e.g. "Dataset 1a2b is used
    by") those jobs. Only ``who``'s own jobs are named; other users' are only counted."""
    own = [job.id for job in users if who.sees(job.owner)][:10]
    others = sum(not who.sees(job.owner) for job in users)
    return Conflict(
        f"{what} unfinished jobs {own}"
        + (f" and {others} of other users" if others else "")
        + "; cancel them or wait for them to finish, then delete it.",
        jobs=own,
    )


def readable(query: Select[Any], model: Any, who: Principal) -> Select[Any]:
    """``query`` narrowed to what ``who`` may read by id: own, shared, or all for an admin."""
    if who.user_id is None or who.admin:
        return query
    if hasattr(model, "shared"):
        return query.where(or_(model.owner == who.user_id, model.shared.is_(True)))
    return query.where(model.owner == who.user_id)
