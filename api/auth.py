"""Who is calling: every /v1 request and every dashboard page is authenticated before routing.

An ASGI middleware rather than a route dependency: it runs before the body is read, and a
dependency's resolution was a fifth of the CPU of a status poll. It accepts a user's token
(``rf_...``, looked up in the database and remembered a few seconds, until it expires or any
token is revoked or user disabled anywhere: ``api.token_memory``), the server's
``REMOTEFIT_TOKEN`` (an admin), or nothing while the service has no users and no token. It
checks the route's scope, then the user's request rate, and leaves the caller in
``scope["state"]["principal"]`` for ``api.deps.CurrentUser`` and the pages.

The token comes as ``Authorization: Bearer`` or, from the dashboard, in the HttpOnly,
SameSite=Strict cookie its login sets (which /v1 accepts too: an EventSource cannot send
headers). A request authorised by the cookie alone that changes something must come from a
page of this server (``Origin``), and any unsafe request naming another origin is refused
(``SameOrigin``). A page asked for without a valid token redirects to the login.
"""

from __future__ import annotations

import hmac
import math
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import send_error
from api.rate import RateLimiter
from api.token_memory import TokenMemory
from models.access import SERVICE, Principal
from models.accounts import tokens, users
from models.accounts.keys import server_key
from models.db import get_read_engine, read_errors
from models.errors import Forbidden, RateLimited, ServiceError, Unauthorized
from models.settings import Settings

GUARDED_PREFIX = "/v1/"
SCHEME = "bearer"
COOKIE = "remotefit_token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# What a browser needs before it has logged in: the login page, its files, the docs, probes.
OPEN_PATHS = ("/login", "/static/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz")
USERS_CHECK_SECONDS = 1.0
_NEVER = object()  # no announcement compares equal to it: the first request asks
ADMIN = Principal(None, "admin", admin=True)
"""The holder of ``REMOTEFIT_TOKEN``."""

# The scope each resource needs to read (GET) and to change (any other method).
SCOPES = {
    "/v1/jobs": ("jobs:read", "jobs:write"),
    "/v1/sweeps": ("jobs:read", "jobs:write"),  # a sweep's trials are jobs
    "/v1/datasets": ("datasets:read", "datasets:write"),
    "/v1/models": ("jobs:read", "jobs:read"),
    "/v1/audit": ("admin", "admin"),
    "/v1/workers": ("admin", "admin"),
}


def required_scope(method: str, path: str) -> str | None:
    """The scope a request needs, or None (``/v1/me``, ``/v1/tokens``: any valid token)."""
    for prefix, (read, write) in SCOPES.items():
        if path == prefix or path.startswith(prefix + "/"):
            reading = method in ("GET", "HEAD") or path.endswith("/predict")
            return read if reading else write
    return None


class Authenticate:
    """ASGI middleware: find the caller of each /v1 request, or refuse it (401, 403, 429)."""

    def __init__(
        self, app: ASGIApp, settings: Settings, limiter: RateLimiter, tokens: TokenMemory
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.service_token = f"bearer {settings.token}".encode() if settings.token else b""
        self.key = server_key(settings)
        self.database_url = settings.database_url
        self.limiter = limiter
        self.users_exist = False  # once true, for good: users are disabled, never deleted
        self.checked_at = -math.inf
        self.users_marker: object = _NEVER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        if not path.startswith(GUARDED_PREFIX):  # a dashboard page
            try:
                principal = await self.principal(scope)
            except Forbidden as error:
                await send_error(send, error)
                return
            except ServiceError:
                await _to_login(scope, send)
                return
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            try:
                principal = await self.principal(scope)
                needed = required_scope(scope["method"], scope["path"])
                if needed is not None and not principal.may(needed):
                    raise Forbidden(
                        f"This token lacks the scope `{needed}` that "
                        f"{scope['method']} {scope['path']} needs; it holds "
                        f"{sorted(principal.scopes)}. Create a token with it "
                        "(`POST /v1/tokens` or `remotefit tokens create --scopes ...`).",
                        scope=needed,
                    )
                if principal.user_id is not None:
                    wait = await self.limiter.take(principal.user_id)
                    if wait > 0:
                        retry = str(max(1, round(wait + 0.5))).encode()
                        await send_error(send, _too_fast(wait), ((b"retry-after", retry),))
                        return
            except ServiceError as error:
                await send_error(send, error)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def principal(self, scope: Scope) -> Principal:
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if not given and (cookie := cookie_token(scope)):
            if scope["method"] in UNSAFE and not same_origin(scope):
                raise Forbidden(
                    "A request sent with the login cookie must come from a page of this server "
                    "(its Origin header); scripts send `Authorization: Bearer <token>` instead."
                )
            given = b"Bearer " + cookie.encode()
        scheme, _, secret = given.partition(b" ")
        presented = scheme.lower() + b" " + secret
        if self.service_token and hmac.compare_digest(presented, self.service_token):
            return ADMIN
        if given:
            text = secret.decode(errors="replace")
            found = self.tokens.get(text)
            if found is None:
                marker = self.tokens.marker()  # before the lookup: a change during it counts
                found = await run_in_threadpool(self._lookup, text)
                if found is not None:
                    self.tokens.keep(text, found, marker)
            if found is None or scheme.lower() != b"bearer":
                raise _refusal(
                    "This token is unknown, revoked or expired, or its user is disabled."
                )
            return found
        if self.service_token:
            raise _refusal("This server requires a token.")
        if self.users_exist or (self._users_unknown() and await run_in_threadpool(self._has_users)):
            raise _refusal("This server requires a token.")
        return SERVICE

    def _users_unknown(self) -> bool:
        """Whether an open server must ask again if it has users: a user was announced since it
        last asked (``models.accounts.changes``), or, where no announcement can be heard, a
        second has passed."""
        marker = self.tokens.marker()
        if marker is None:
            return time.monotonic() - self.checked_at >= USERS_CHECK_SECONDS
        return marker != self.users_marker

    def _lookup(self, secret: str) -> Principal | None:
        return look_up(self.database_url, self.key, secret)

    def _has_users(self) -> bool:
        # An open server asks only when a user may have been added: a status poll must not pay
        # a query for it. The first user, added by the CLI, counts from the next request.
        marker = self.tokens.marker()  # before the query: a user added during it counts
        with read_errors(), Session(get_read_engine(self.database_url)) as session:
            self.users_exist = users.any_users(session)
        self.checked_at = time.monotonic()
        self.users_marker = marker
        return self.users_exist


def look_up(database_url: str, key: bytes, secret: str) -> Principal | None:
    """The user a token (``rf_...``) names, if it is valid now; the one place tokens are judged."""
    # A bare connection of the read engine: an ORM session cost more than the query.
    with read_errors(), get_read_engine(database_url).connect() as connection:
        return tokens.authenticate(connection, key, secret.strip())


def resolve_token(settings: Settings, key: bytes, token: str) -> Principal | None:
    """Who ``token`` opens this server as: the server's token, a user's, or nobody (None).

    For the dashboard's login form; the middleware judges each request the same way.
    """
    token = token.strip()
    if settings.token and hmac.compare_digest(token.encode(), settings.token.encode()):
        return ADMIN
    return look_up(settings.database_url, key, token) if token else None


def token_required(settings: Settings) -> bool:
    """Whether callers must present a token: the server has one, or has users."""
    if settings.token:
        return True
    with read_errors(), Session(get_read_engine(settings.database_url)) as session:
        return users.any_users(session)


def _header(scope: Scope, name: bytes) -> str:
    return next((v for k, v in scope["headers"] if k == name), b"").decode("latin-1")


def cookie_token(scope: Scope) -> str:
    """The token the dashboard's login keeps in its cookie, or ``""``."""
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


def _refusal(why: str) -> Unauthorized:
    return Unauthorized(
        f"{why} Send `Authorization: Bearer <token>` (curl -H, Client(token=...), or "
        "REMOTEFIT_TOKEN for the client and CLI); an admin makes one with `remotefit tokens "
        "create --user NAME`."
    )


def _too_fast(wait: float) -> RateLimited:
    return RateLimited(
        f"Too many requests from this user; try again in {wait:.2f} s (REMOTEFIT_RATE_PER_SECOND"
        " and REMOTEFIT_RATE_BURST set the rate). Slow down polling, or follow "
        "`/v1/jobs/{id}/events` instead.",
        retry_after_s=round(wait, 3),
    )


def install(app: FastAPI, settings: Settings, limiter: RateLimiter, tokens: TokenMemory) -> None:
    """Authenticate ``app``'s /v1 routes and declare the scheme in its OpenAPI document."""
    app.add_middleware(Authenticate, settings=settings, limiter=limiter, tokens=tokens)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "A user's token (rf_...), or the server's REMOTEFIT_TOKEN.",
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(GUARDED_PREFIX):
                for operation in operations.values():
                    operation["security"] = [{SCHEME: []}]
                    operation.setdefault("responses", {})["401"] = {
                        "description": "No token, or one that is not valid."
                    }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
