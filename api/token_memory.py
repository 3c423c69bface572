"""Valid tokens remembered for a few seconds, so that a client polling a job pays no lookup.

A lookup is a query on a thread (the event loop must not wait on the database); under eight
polling clients it cost more than the poll itself. A remembered token is forgotten when its time
is up, when it expires, and at once when any token is revoked or any user disabled, in any
process: ``marker`` tells what the announcements of ``models.accounts.changes`` have said so
far (a PostgreSQL notification count, or the SQLite stamp file), and a token remembered under
another marker is looked up again. Without a marker (PostgreSQL's listener not connected), no
token is remembered.

Only valid tokens are kept, so guessing cannot fill it; under a digest of the secret, and never
more than ``SIZE``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from models.access import Principal
from models.tables import utcnow

SECONDS = 5.0
SIZE = 4096

Marker = Callable[[], Any]
"""What the accounts announcements have said so far; None while it cannot be known."""


class TokenMemory:
    def __init__(self, marker: Marker) -> None:
        self.marker = marker
        self.found: dict[bytes, tuple[float, Any, Principal]] = {}

    @staticmethod
    def _key(secret: str) -> bytes:
        return hashlib.blake2b(secret.encode(), digest_size=20).digest()

    def get(self, secret: str) -> Principal | None:
        """The principal ``secret`` was found to be, if that still holds; else None."""
        key = self._key(secret)
        kept = self.found.get(key)
        if kept is None:
            return None
        until, marker, principal = kept
        if time.monotonic() >= until or marker is None or marker != self.marker():
            del self.found[key]
            return None
        return principal

    def keep(self, secret: str, principal: Principal, marker: Any) -> None:
        """Remember a valid token, found under ``marker`` (read before the lookup began)."""
        if marker is None:
            return
        seconds = SECONDS
        if principal.expires_at is not None:
            seconds = min(seconds, (principal.expires_at - utcnow()).total_seconds())
        if seconds <= 0:
            return
        if len(self.found) >= SIZE:
            self.found.clear()
        self.found[self._key(secret)] = (time.monotonic() + seconds, marker, principal)

    def forget(self) -> None:
        self.found.clear()
