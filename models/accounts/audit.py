"""The audit log: cancels, deletes, and changes to users, tokens and quotas. Append-only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tables import AuditEntry


def record(session: Session, actor: str, action: str, target: str, **data: Any) -> None:
    """Add one entry; it commits with the change it describes."""
    session.add(AuditEntry(actor=actor, action=action, target=target, data=data))


def entries(session: Session, limit: int, offset: int) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))
