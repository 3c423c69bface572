"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from models.access import SERVICE, Principal
from models.data.store import LocalStore
from models.db import session_scope
from models.settings import Settings


# The cheap dependencies are ``async`` so that FastAPI does not send each to the thread pool.
async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.settings.database_url) as session:
        yield session


async def get_store(request: Request) -> LocalStore:
    store: LocalStore = request.app.state.store
    return store


async def get_principal(request: Request) -> Principal:
    """The caller, as ``api.auth`` found it (the service itself while it has no users)."""
    principal: Principal = request.scope.get("state", {}).get("principal", SERVICE)
    return principal


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# scope="function": the session commits before the response is sent, not after it, so a client
# that reads right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StoreDep = Annotated[LocalStore, Depends(get_store)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
