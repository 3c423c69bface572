"""The caller: who they are, what their token may do, their quotas and use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep, SettingsDep
from models.accounts import quotas

router = APIRouter(prefix="/v1/me", tags=["accounts"])


@router.get("")
def me(who: CurrentUser, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The caller: name, admin or not, the token's scopes, each quota with its current use."""
    return quotas.for_me(session, who, settings)
