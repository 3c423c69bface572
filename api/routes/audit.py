"""The audit log, for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import SessionDep
from models.accounts import audit

router = APIRouter(prefix="/v1/audit", tags=["accounts"])


@router.get("")
def audit_log(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Cancels, deletes, and user, token and quota changes, newest first (admins only)."""
    return {
        "items": [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "data": e.data,
            }
            for e in audit.entries(session, limit, offset)
        ]
    }
