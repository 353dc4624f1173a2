"""The outbox: queue posts in the business transaction, claim and settle them when sending."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.db import utcnow
from app.models import OutboxMessage, OutboxStatus

MAX_ATTEMPTS = 8


def enqueue(*, session: Session, kind: str, period: str, platform: str, target: str,
            payload: dict[str, Any], not_before: datetime | None = None) -> bool:
    """Queue one post; False if (kind, period, target) was queued before, so it is made once."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxMessage)
        .values(kind=kind, period=period, platform=platform, target=target, payload=payload,
                status=OutboxStatus.PENDING.value, attempts=0, last_error="",
                next_attempt_at=not_before or utcnow(), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "period", "target"])
        .returning(OutboxMessage.id)
    )
    return session.execute(statement).first() is not None


def _due(now: datetime) -> SelectOfScalar[OutboxMessage]:
    return (select(OutboxMessage)
            .where(col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
                   OutboxMessage.next_attempt_at <= now)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id)))


def any_due(*, session: Session, now: datetime) -> bool:
    """Whether any post is due to be sent."""
    return session.exec(_due(now).limit(1)).first() is not None


def claim_due(*, session: Session, now: datetime, limit: int = 50) -> list[OutboxMessage]:
    """Mark up to `limit` due posts as being sent (by this worker) and return them."""
    query = _due(now).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.exec(query))
    for row in rows:
        row.status = OutboxStatus.SENDING
        row.attempts += 1
    session.flush()
    return rows


def mark_sent(*, session: Session, message_id: int, now: datetime) -> None:
    """Record a delivered post."""
    row = session.get(OutboxMessage, message_id)
    if row is not None:
        row.status = OutboxStatus.SENT
        row.sent_at = now
        row.last_error = ""


def mark_failed(*, session: Session, message_id: int, now: datetime, error: str,
                retryable: bool = True, max_attempts: int = MAX_ATTEMPTS) -> None:
    """Record a failed attempt: retry later with backoff and jitter, or give up (dead)."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return
    row.last_error = error[:1000]
    if not retryable or row.attempts >= max_attempts:
        row.status = OutboxStatus.DEAD
        return
    row.status = OutboxStatus.FAILED
    delay = min(3600.0, 15.0 * 2 ** (row.attempts - 1))
    row.next_attempt_at = now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


def messages(*, session: Session, status: OutboxStatus | None = None,
             kind: str | None = None) -> list[OutboxMessage]:
    """Outbox rows, oldest first, optionally of one status or kind."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id))
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.exec(query))
