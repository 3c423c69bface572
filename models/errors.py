"""Errors modeled once: each carries its HTTP status and a stable code.

The API maps every ``ServiceError`` to ``{"detail": {"code", "message", ...}}`` in one handler;
``models/`` raises them without knowing about HTTP frameworks. Messages follow Keras: what
happened, what was expected, how to fix it, and the value received.
"""

from __future__ import annotations

import re
from typing import Any

# An absolute path of two components or more: the store's, a temporary folder's, a library's.
_SERVER_PATH = re.compile(r"(?<![\w.])/[\w.\-]+(?:/[\w.\-]+)+")


def without_paths(text: str) -> str:
    """``text`` (a library's message) with the server's file paths taken out: a client needs
    what went wrong, never where the server keeps its files."""
    return _SERVER_PATH.sub("<server path>", text)


class ServiceError(Exception):
    """Base of every error a caller can see."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def detail(self) -> dict[str, Any]:
        """The JSON body under ``detail``."""
        return {"code": self.code, "message": self.message, **self.extra}


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"


class ArtifactNotFound(NotFound):
    code = "artifact_not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class InvalidSpec(ServiceError):
    """The job spec is well-formed JSON but asks for something that cannot run."""

    status_code = 422
    code = "invalid_spec"


class InvalidModel(InvalidSpec):
    code = "invalid_model"


class ForbiddenModel(InvalidModel):
    """The model JSON asks for something unsafe (code, files, custom objects)."""

    code = "forbidden_model"


class LimitExceeded(InvalidSpec):
    code = "limit_exceeded"


class DatasetMismatch(InvalidSpec):
    code = "dataset_mismatch"


class InvalidRequest(ServiceError):
    """The request itself is malformed (a missing field, the wrong content type)."""

    status_code = 422
    code = "invalid_request"


class MalformedBody(ServiceError):
    """The body breaks its own framing (a multipart body cut short, or bytes after its end)."""

    status_code = 400
    code = "malformed_body"


class InvalidUpload(ServiceError):
    status_code = 422
    code = "invalid_upload"


class UploadTooLarge(ServiceError):
    status_code = 413
    code = "upload_too_large"


class TooManyRequests(ServiceError):
    """More of something at once than this server allows (open event streams)."""

    status_code = 429
    code = "too_many_requests"


class StoreFull(ServiceError):
    """The disk under the store has no room for what was sent."""

    status_code = 507
    code = "store_full"


class ServiceUnavailable(ServiceError):
    status_code = 503
    code = "service_unavailable"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class QuotaExceeded(ServiceError):
    """A user's quota would be passed: nothing was created."""

    status_code = 429
    code = "quota_exceeded"


class RateLimited(ServiceError):
    status_code = 429
    code = "rate_limited"
