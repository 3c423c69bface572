"""An optional shared token: with REMOTEFIT_TOKEN set, every /v1 route requires it.

The check is ASGI middleware rather than a route dependency: it runs before routing, costs a
header lookup, and a dependency's resolution was a fifth of the CPU of a status poll. The
OpenAPI document declares the scheme, so Swagger UI offers its Authorize button.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import send_error
from models.errors import ServiceError

GUARDED_PREFIX = "/v1/"
SCHEME = "bearer"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class RequireToken:
    """ASGI middleware: refuse a /v1 request without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(GUARDED_PREFIX):
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            scheme, _, token = given.partition(b" ")
            if not hmac.compare_digest(scheme.lower() + b" " + token, self.expected):
                await send_error(send, _refusal())
                return
        await self.app(scope, receive, send)


def _refusal() -> Unauthorized:
    return Unauthorized(
        "This server requires a token: send `Authorization: Bearer <token>` (curl -H, "
        "Client(token=...), or REMOTEFIT_TOKEN for the client and CLI)."
    )


def require_token(app: FastAPI, token: str) -> None:
    """Guard ``app``'s /v1 routes with ``token`` and say so in its OpenAPI document."""
    app.add_middleware(RequireToken, token=token)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The server's REMOTEFIT_TOKEN.",
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(GUARDED_PREFIX):
                for operation in operations.values():
                    operation["security"] = [{SCHEME: []}]
                    operation.setdefault("responses", {})["401"] = {
                        "description": "No token, or the wrong one."
                    }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
