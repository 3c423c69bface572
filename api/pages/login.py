"""Logging in with the server's token, once per browser, and logging out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import COOKIE, resolve_token, token_required
from api.pages.rendering import local_path, page

router = APIRouter(include_in_schema=False)


@router.get("/login", response_model=None)
def login_page(request: Request, next: str = "/") -> Response:
    if not token_required(request.app.state.settings):
        return RedirectResponse(local_path(next), status_code=303)
    return page(request, "login.html", next=local_path(next), error="")


@router.post("/login", response_model=None)
def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    state = request.app.state
    if (
        token_required(state.settings)
        and resolve_token(state.settings, state.token_key, token) is None
    ):
        message = (
            "That token does not open this server: it is unknown, revoked or expired, or its "
            "user is disabled. Ask an admin for one (`remotefit tokens create --user NAME`)."
        )
        return page(request, "login.html", 401, next=local_path(next), error=message)
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
