"""The outbox: queue posts in the business transaction, claim and settle them when sending."""

from __future__ import annotations

import logging
import random
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from app.db import utcnow
from app.models import OutboxMessage, OutboxStatus
from app.services import audit

log = logging.getLogger(__name__)

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
    queued = session.execute(statement).first() is not None
    if queued:
        session.info[_QUEUED] = True
    return queued


_QUEUED = "outbox_queued"


def queued_in(session: Session) -> bool:
    """Whether this session queued a post, so the caller can wake the worker after commit."""
    return bool(session.info.get(_QUEUED))


# The statuses a worker may pick up; `sending` only once its lease has run out (its worker died).
_OPEN = (OutboxStatus.PENDING, OutboxStatus.FAILED)
_OPEN_OR_STALE = (*_OPEN, OutboxStatus.SENDING)


class OutboxError(ValueError):
    """An outbox operation that cannot be done (unknown row, wrong status)."""


def _due(now: datetime, statuses: Collection[OutboxStatus],
         platforms: Collection[str] | None) -> SelectOfScalar[OutboxMessage]:
    wanted = list(statuses)
    status = (OutboxMessage.status == wanted[0] if len(wanted) == 1
              else col(OutboxMessage.status).in_(wanted))
    query = select(OutboxMessage).where(status, OutboxMessage.next_attempt_at <= now)
    if platforms is not None:
        query = query.where(col(OutboxMessage.platform).in_(list(platforms)))
    return query


def any_due(*, session: Session, now: datetime, reclaim: bool = False,
            platforms: Collection[str] | None = None) -> bool:
    """Whether any post is due to be sent (with `reclaim`, also one whose lease ran out)."""
    query = _due(now, _OPEN_OR_STALE if reclaim else _OPEN, platforms).limit(1)
    return session.exec(query).first() is not None


def claim_due(*, session: Session, now: datetime, limit: int = 50,
              lease_s: float | None = None,
              platforms: Collection[str] | None = None) -> list[OutboxMessage]:
    """Mark up to `limit` due posts (of `platforms`, if given) as being sent and return them.

    With `lease_s`, a claimed row is due again `lease_s` seconds later unless it is settled
    first: a worker that died mid-batch leaves its rows to the next one (at least once).
    """
    rows: list[OutboxMessage] = []
    # One query per status, each read in the order of the (status, next_attempt_at) index: a
    # single `status IN (…)` query sorts every due row first, which 200,000 queued posts
    # turn into seconds per batch.
    for status in _OPEN_OR_STALE if lease_s is not None else _OPEN:
        query = (_due(now, (status,), platforms)
                 .order_by(col(OutboxMessage.next_attempt_at)).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows.extend(session.exec(query))
    rows = sorted(rows, key=lambda row: (row.next_attempt_at, row.id or 0))[:limit]
    stale = [row.id for row in rows if row.status == OutboxStatus.SENDING]
    if stale:
        # Sent or not, nobody can tell: sending again may duplicate, leaving it would lose it.
        log.warning("outbox: %d rows left in sending past their lease are claimed again: %s",
                    len(stale), stale[:20])
    for row in rows:
        row.status = OutboxStatus.SENDING
        row.attempts += 1
        if lease_s is not None:
            row.next_attempt_at = now + timedelta(seconds=lease_s)
    session.flush()
    return rows


def defer(*, session: Session, message_id: int, until: datetime) -> None:
    """Hand a claimed row back unsent, due at `until`; the claim does not count as an attempt."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != OutboxStatus.SENDING:
        return
    row.status = OutboxStatus.PENDING
    row.attempts = max(0, row.attempts - 1)
    row.next_attempt_at = until


def mark_sent(*, session: Session, message_id: int, now: datetime) -> None:
    """Record a delivered post."""
    # One UPDATE, no load: a fan-out settles thousands of rows one short transaction each.
    session.execute(update(OutboxMessage).where(col(OutboxMessage.id) == message_id)
                    .values(status=OutboxStatus.SENT, sent_at=now, last_error=""))


def mark_failed(*, session: Session, message_id: int, now: datetime, error: str,
                retryable: bool = True, max_attempts: int = MAX_ATTEMPTS,
                not_before: datetime | None = None) -> None:
    """Record a failed attempt: retry later with backoff and jitter, or give up (dead).

    `not_before` holds the retry back further, e.g. while the platform locks the robot out.
    """
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
    if not_before is not None and not_before > row.next_attempt_at:
        row.next_attempt_at = not_before


def messages(*, session: Session, status: OutboxStatus | None = None,
             kind: str | None = None, limit: int | None = None,
             newest_first: bool = False) -> list[OutboxMessage]:
    """Outbox rows, oldest first (or newest first), optionally of one status or kind."""
    order = col(OutboxMessage.id).desc() if newest_first else col(OutboxMessage.id)
    query = select(OutboxMessage).order_by(order)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def outstanding(*, session: Session, before: datetime,
                platforms: Collection[str] | None = None) -> int:
    """Posts not yet settled (pending, retrying or being sent) that are due before `before`."""
    query = (select(func.count()).select_from(OutboxMessage)
             .where(col(OutboxMessage.status).in_(_OPEN_OR_STALE),
                    OutboxMessage.next_attempt_at < before))
    if platforms is not None:
        query = query.where(col(OutboxMessage.platform).in_(list(platforms)))
    return int(session.exec(query).one())


def retry(*, session: Session, message_id: int, now: datetime,
          actor_label: str = "cli") -> OutboxMessage:
    """Send a dead or failed post again now, with a fresh count of attempts (audited)."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise OutboxError(f"没有编号为 {message_id} 的待发消息")
    if row.status not in (OutboxStatus.DEAD, OutboxStatus.FAILED):
        raise OutboxError(f"消息 {message_id} 的状态是 {row.status}，只有 dead 或 failed 可以重发")
    before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
    row.status = OutboxStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    session.flush()
    audit.record(session=session, actor_label=actor_label, action="retry",
                 entity="outbox_message", entity_id=row.id, before=before,
                 after={"status": row.status, "attempts": 0})
    return row


def retry_dead(*, session: Session, now: datetime, actor_label: str = "cli") -> list[int]:
    """Send every dead post again now (each audited); their ids."""
    ids = list(session.exec(select(OutboxMessage.id)
                            .where(OutboxMessage.status == OutboxStatus.DEAD)
                            .order_by(col(OutboxMessage.id))))
    for message_id in ids:
        assert message_id is not None
        retry(session=session, message_id=message_id, now=now, actor_label=actor_label)
    return [i for i in ids if i is not None]
