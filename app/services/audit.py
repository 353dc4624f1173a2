"""Writing the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

from app.models import AuditLog, DataVersion

_VERSION = "partypoints_data_version"
_WROTE = "partypoints_wrote"


_VERSION_QUERY = select(DataVersion.version).where(DataVersion.id == 1)


def data_version(session: Session) -> int:
    """The current data version: it moves whenever anything audited changes.

    Read once per transaction; caches keyed on it then cost one query per request.
    """
    version = session.info.get(_VERSION)
    if version is None:
        version = session.connection().execute(_VERSION_QUERY).scalar_one()  # Core: no ORM
        session.info[_VERSION] = version
    return version


def saw_version(session: Session, version: int) -> None:
    """Note the data version a statement of this transaction read along with its own work."""
    session.info.setdefault(_VERSION, version)


@event.listens_for(Session, "after_transaction_end")
def _forget_version(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_VERSION, None)
        session.info.pop(_WROTE, None)


def wrote(session: Session) -> bool:
    """Whether this transaction has made an audited change (its data version is its own)."""
    return _WROTE in session.info


def _bump(session: Session) -> None:
    # One row for the whole system: writers queue on its lock, so a version a reader sees is
    # never older than a change it can see (unlike ids, which are not handed out in commit order).
    session.info.pop(_VERSION, None)
    session.info[_WROTE] = True
    session.execute(update(DataVersion).where(DataVersion.id == 1)
                    .values(version=DataVersion.version + 1))


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
    _bump(session)


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {
        k: v if v is None or isinstance(v, bool | int | float) else str(v)
        for k, v in values.items()
    }
