"""An optional shared token: with REMOTEFIT_TOKEN set, every /v1 route and page requires it.

The API takes it as ``Authorization: Bearer``; the pages' login keeps it in an HttpOnly,
SameSite=Strict cookie, which /v1 accepts too (an EventSource cannot send headers). Every
unsafe request that carries an ``Origin`` must come from this origin, and one authorised by the
cookie must carry it. ``resolve_token`` is the one place a presented token is judged.

The check is ASGI middleware rather than a route dependency: it runs before routing, costs a
header lookup, and a dependency's resolution was a fifth of the CPU of a status poll. The
OpenAPI document declares the scheme, so Swagger UI offers its Authorize button.
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import send_error
from models.errors import ServiceError

GUARDED_PREFIX = "/v1/"
SCHEME = "bearer"
COOKIE = "remotefit_token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# What a browser needs before it has logged in: the login page, its files, the docs, probes.
OPEN_PATHS = ("/login", "/static/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz")


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


def resolve_token(expected: str, given: str) -> bool:
    """Whether ``given`` opens this server: for the API's header and the pages' cookie alike."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _header(scope: Scope, name: bytes) -> str:
    return next((v for k, v in scope["headers"] if k == name), b"").decode("latin-1")


def cookie_token(scope: Scope) -> str:
    try:
        morsel = SimpleCookie(_header(scope, b"cookie")).get(COOKIE)
    except CookieError:
        return ""
    return morsel.value if morsel else ""


def same_origin(scope: Scope) -> bool | None:
    """True or False for a request that names its ``Origin``; None for one that does not."""
    origin = _header(scope, b"origin")
    if not origin:
        return None
    return urlsplit(origin).netloc.lower() == _header(scope, b"host").lower()


class SameOrigin:
    """ASGI middleware: refuse an unsafe request sent by a page of another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE and same_origin(scope) is False:
            await send_error(send, Forbidden("A page of another origin may not send this request."))
            return
        await self.app(scope, receive, send)


class RequireToken:
    """ASGI middleware: refuse a request without the token (a page: send it to log in)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        scheme, _, given = _header(scope, b"authorization").partition(" ")
        if scheme.lower() == SCHEME and resolve_token(self.token, given):
            await self.app(scope, receive, send)
            return
        cookie = cookie_token(scope)
        if cookie and resolve_token(self.token, cookie):
            if scope["method"] in UNSAFE and not same_origin(scope):
                await send_error(
                    send,
                    Forbidden(
                        "A request sent with the login cookie must "
                        "come from a page of this server (Origin)."
                    ),
                )
                return
            await self.app(scope, receive, send)
            return
        if path.startswith(GUARDED_PREFIX):
            await send_error(send, _refusal())
            return
        await _to_login(scope, send)


async def _to_login(scope: Scope, send: Send) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    back = quote(scope["path"] + (f"?{query}" if query else ""), safe="")
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", f"/login?next={back}".encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


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
