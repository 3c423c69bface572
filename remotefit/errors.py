"""The one exception the client raises: the server's answer, message first."""

from __future__ import annotations

from typing import Any


class RemoteFitError(Exception):
    """A request the server refused or could not serve.

    ``message`` is the server's own explanation (what was wrong and how to fix it);
    ``code`` its stable error code; ``status_code`` the HTTP status (0 when unreachable).
    """

    def __init__(
        self, message: str, *, status_code: int = 0, code: str = "", detail: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        prefix = f"{self.status_code} {self.code}: " if self.status_code else ""
        return f"{prefix}{self.message}"


class JobFailed(RemoteFitError):
    """A job ended ``failed`` (or ``cancelled``) instead of ``succeeded``."""
