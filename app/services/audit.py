"""Writing the audit log."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.models import AuditLog


def record(
    *,
    session: Session,
    actor_label: str,
    action: str,
    entity: str,
    entity_id: object | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> None:
    """Append one audit entry in the caller's transaction."""
    session.add(
        AuditLog(
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=_jsonable(before),
            after=_jsonable(after),
        )
    )


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {
        k: v if v is None or isinstance(v, bool | int | float) else str(v)
        for k, v in values.items()
    }
