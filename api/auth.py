"""An optional shared token: with REMOTEFIT_TOKEN set, every /v1 route requires it."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, Request

from models.errors import ServiceError


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


async def require_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Refuse a request without ``Authorization: Bearer <REMOTEFIT_TOKEN>`` when one is set.

    ``async`` although it awaits nothing: a plain ``def`` would cost every request a hop to
    the thread pool.
    """
    expected = request.app.state.settings.token
    if not expected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(
            "This server requires a token: send `Authorization: Bearer <token>` (curl -H, "
            "Client(token=...), or REMOTEFIT_TOKEN for the client and CLI)."
        )
