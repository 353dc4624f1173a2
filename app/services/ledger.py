"""The append-only points ledger: recording, reviewing and reversing entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import TextClause, and_, text
from sqlmodel import Session, col, func, select

from app.domain.periods import FIRST_YEAR, LAST_YEAR, month_key_of, next_month, parse_month
from app.domain.refusals import Refusal, Refused
from app.domain.scheme import Source
from app.domain.scoring import EntryFact
from app.models import (
    EntryReview,
    EntrySource,
    EntryStatus,
    LedgerEntry,
    MemberType,
    Organization,
    PeriodClose,
    Person,
    SchemeVersion,
)
from app.services import access, audit, schemes


class LedgerError(Refused):
    """A ledger operation was refused; the message is for the user, in Chinese."""


# An indicator's source in the scheme decides how its entries start out.
_SOURCE = {
    Source.automatic: EntrySource.AUTOMATIC,
    Source.declared: EntrySource.DECLARED,
    Source.assessed: EntrySource.ASSESSED,
}
_NEEDS_REVIEW = {EntrySource.DECLARED, EntrySource.ASSESSED}
# Times one entry may count an indicator: far above any month's real count (a daily item is at
# most 31), and far below what the database's integer and the points column can hold.
MAX_COUNT = 1000


@dataclass(frozen=True)
class Actor:
    """Who does something: a person on the roster, or a labelled system actor (CLI, scheduler)."""

    label: str
    person_id: int | None = None


# Written once as SQL text over the unaliased table, for ORM queries and the set-based close alike.
APPROVED_SQL = (
    f"(ledger_entry.status = '{EntryStatus.APPROVED.value}' OR EXISTS (SELECT 1 FROM entry_review"
    " WHERE entry_review.entry_id = ledger_entry.id"
    f" AND entry_review.decision = '{EntryStatus.APPROVED.value}'))"
)
PENDING_SQL = (
    f"(ledger_entry.status = '{EntryStatus.PENDING.value}' AND NOT EXISTS (SELECT 1"
    " FROM entry_review WHERE entry_review.entry_id = ledger_entry.id))"
)


def approved_clause() -> TextClause:
    """SQL condition: the entry counts (approved at creation, or approved on review)."""
    return text(APPROVED_SQL)


def pending_clause() -> TextClause:
    """SQL condition: the entry awaits review."""
    return text(PENDING_SQL)


def closed_period_owner(*, session: Session, org: Organization, period: str) -> int | None:
    """Id of the organisation whose close froze `period` for `org`, if any."""
    chain = [int(i) for i in org.path.strip("/").split("/") if i]
    return session.exec(
        select(PeriodClose.organization_id).where(
            col(PeriodClose.organization_id).in_(chain), PeriodClose.period == period
        )
    ).first()


def _ensure_open(session: Session, org: Organization, period: str) -> None:
    if closed_period_owner(session=session, org=org, period=period) is not None:
        raise LedgerError(f"{period} 已结账，不能再记入该月；如需更正，请记入下一个未结账月份",
                          kind=Refusal.conflict)


def _ensure_still_open(session: Session, org: Organization, period: str) -> None:
    # On PostgreSQL a concurrent close holds a SHARE lock on ledger_entry, so the write above
    # waited for it; this second look (a new statement, a new snapshot) then sees the close.
    _ensure_open(session, org, period)


def first_open_period(*, session: Session, org: Organization, start: str) -> str:
    """The first month from `start` on that is not closed for `org`."""
    period = start
    while closed_period_owner(session=session, org=org, period=period) is not None:
        period = next_month(period)
    return period


def record_entry(
    *,
    session: Session,
    member_id: int,
    indicator_code: str,
    occurred_on: date,
    reason: str,
    actor: Actor,
    count: int = 1,
    source: EntrySource | None = None,
    evidence: list[Any] | None = None,
) -> LedgerEntry:
    """Append one entry under the scheme in force; declared and assessed entries await review."""
    if not 1 <= count <= MAX_COUNT:
        raise LedgerError(f"次数必须是 1 到 {MAX_COUNT} 之间的整数")
    if not FIRST_YEAR <= occurred_on.year <= LAST_YEAR:
        raise LedgerError(f"日期 {occurred_on} 不在可记录的范围内")
    if not reason.strip():
        raise LedgerError("必须填写原因")
    member = session.get(Person, member_id)
    if member is None or not member.active:
        raise LedgerError("找不到该人员，或该人员已停用", kind=Refusal.not_found)
    if member.member_type == MemberType.masses:
        raise LedgerError(f"{member.name} 不是党员，不参加党员积分")
    org = session.get(Organization, member.organization_id)
    assert org is not None
    period = month_key_of(occurred_on)
    _ensure_open(session, org, period)
    version = schemes.version_for(session=session, org=org, period=period)
    if version is None:
        raise LedgerError(f"{period} 没有生效的积分方案，请先发布方案")
    indicator = schemes.scheme_of(version).indicator_by_code.get(indicator_code)
    if indicator is None:
        raise LedgerError(f"积分方案（第{version.version}版）中没有指标“{indicator_code}”")
    if indicator.evidence_required and not evidence and source is not EntrySource.ADJUSTMENT:
        raise LedgerError(f"指标“{indicator.name}”需要提供佐证材料")
    source = source or _SOURCE[indicator.source]
    entry = LedgerEntry(
        person_id=member.id,
        organization_id=org.id,
        scheme_version_id=version.id,
        indicator_code=indicator_code,
        count=count,
        points=indicator.points * count,
        occurred_on=occurred_on,
        period=period,
        source=source,
        status=EntryStatus.PENDING if source in _NEEDS_REVIEW else EntryStatus.APPROVED,
        reason=reason.strip(),
        evidence=evidence,
        created_by_id=actor.person_id,
        created_by_label=actor.label,
    )
    session.add(entry)
    session.flush()
    _ensure_still_open(session, org, period)
    _audit_entry(session, entry, actor, "create")
    return entry


def _audit_entry(session: Session, entry: LedgerEntry, actor: Actor, action: str) -> None:
    audit.record(
        session=session,
        actor_id=actor.person_id,
        actor_label=actor.label,
        action=action,
        entity="ledger_entry",
        entity_id=entry.id,
        after={
            "person_id": entry.person_id,
            "indicator": entry.indicator_code,
            "points": entry.points,
            "period": entry.period,
            "status": entry.status,
            "reason": entry.reason,
            "reversal_of": entry.reversal_of_id,
        },
    )


def status_of(*, session: Session, entry: LedgerEntry) -> EntryStatus:
    """The entry's effective status: its review decides a pending entry."""
    if entry.status != EntryStatus.PENDING:
        return EntryStatus(entry.status)
    review = session.exec(select(EntryReview).where(EntryReview.entry_id == entry.id)).first()
    return EntryStatus(review.decision) if review else EntryStatus.PENDING


def review_entry(
    *, session: Session, entry_id: int, actor: Actor, approve: bool, reason: str = ""
) -> EntryReview:
    """Decide a pending entry; nobody may approve an entry they made or one in their own name."""
    entry = session.get(LedgerEntry, entry_id)
    if entry is None:
        raise LedgerError(f"找不到积分记录 #{entry_id}", kind=Refusal.not_found)
    if status_of(session=session, entry=entry) is not EntryStatus.PENDING:
        raise LedgerError(f"积分记录 #{entry_id} 已处理，不能重复审核", kind=Refusal.conflict)
    if actor.person_id is None:
        raise LedgerError("审核人必须是名册中的人员")
    if actor.person_id in (entry.created_by_id, entry.person_id):
        raise LedgerError("不能审核自己提交或与自己有关的积分记录", kind=Refusal.forbidden)
    if not approve and not reason.strip():
        raise LedgerError("驳回时必须填写理由")
    org = session.get(Organization, entry.organization_id)
    assert org is not None
    _ensure_open(session, org, entry.period)
    decision = EntryStatus.APPROVED if approve else EntryStatus.REJECTED
    review = EntryReview(entry_id=entry_id, decision=decision, reviewer_id=actor.person_id,
                         reviewer_label=actor.label, reason=reason.strip())
    session.add(review)
    session.flush()
    _ensure_still_open(session, org, entry.period)
    audit.record(session=session, actor_id=actor.person_id, actor_label=actor.label,
                 action="review", entity="ledger_entry", entity_id=entry_id,
                 before={"status": EntryStatus.PENDING},
                 after={"status": decision, "reason": review.reason})
    return review


def revoke_entry(
    *, session: Session, entry_id: int, reason: str, actor: Actor, today: date
) -> LedgerEntry:
    """Reverse an approved entry with a linked entry; a closed month's correction goes forward."""
    original = session.get(LedgerEntry, entry_id)
    if original is None:
        raise LedgerError(f"找不到积分记录 #{entry_id}", kind=Refusal.not_found)
    if original.reversal_of_id is not None:
        raise LedgerError(f"#{entry_id} 本身是冲销记录，不能再冲销")
    if status_of(session=session, entry=original) is not EntryStatus.APPROVED:
        raise LedgerError(f"#{entry_id} 尚未生效（待审核或已驳回），无需冲销")
    if not reason.strip():
        raise LedgerError("必须填写冲销原因")
    already = session.exec(
        select(LedgerEntry.id).where(LedgerEntry.reversal_of_id == entry_id)
    ).first()
    if already is not None:
        raise LedgerError(f"#{entry_id} 已被 #{already} 冲销")
    org = session.get(Organization, original.organization_id)
    assert org is not None
    period, occurred_on = original.period, original.occurred_on
    if closed_period_owner(session=session, org=org, period=period) is not None:
        start = max(next_month(period), month_key_of(today))
        period = first_open_period(session=session, org=org, start=start)
        occurred_on = today if month_key_of(today) == period else date(*parse_month(period), 1)
    reversal = LedgerEntry(
        person_id=original.person_id,
        organization_id=original.organization_id,
        scheme_version_id=original.scheme_version_id,
        indicator_code=original.indicator_code,
        count=original.count,
        points=-original.points,
        occurred_on=occurred_on,
        period=period,
        source=EntrySource.ADJUSTMENT,
        status=EntryStatus.APPROVED,
        reason=reason.strip(),
        created_by_id=actor.person_id,
        created_by_label=actor.label,
        reversal_of_id=original.id,
    )
    session.add(reversal)
    session.flush()
    _audit_entry(session, reversal, actor, "revoke")
    return reversal


def approved_facts(
    *, session: Session, person_ids: list[int], periods: list[str]
) -> dict[tuple[int, str], list[EntryFact]]:
    """Approved entries as scoring facts, keyed by (person, period)."""
    out: dict[tuple[int, str], list[EntryFact]] = {}
    if not person_ids or not periods:
        return out
    query = select(
        LedgerEntry.person_id, LedgerEntry.period, LedgerEntry.indicator_code,
        LedgerEntry.points, LedgerEntry.occurred_on, LedgerEntry.reversal_of_id,
    ).where(
        and_(col(LedgerEntry.person_id).in_(person_ids), col(LedgerEntry.period).in_(periods)),
        approved_clause(),
    )
    for person_id, period, code, points, occurred_on, reversal_of in session.exec(query):
        out.setdefault((person_id, period), []).append(
            EntryFact(code, Decimal(points), occurred_on, reversal=reversal_of is not None)
        )
    return out


@dataclass(frozen=True)
class Pending:
    """What of a member's month still awaits review: how many entries, worth how much."""

    count: int
    points: Decimal

    NONE: ClassVar[Pending]


Pending.NONE = Pending(0, Decimal(0))


def pending_totals(
    *, session: Session, person_ids: list[int], period: str
) -> dict[int, Pending]:
    """Entries awaiting review per member for a month (members with none are left out)."""
    if not person_ids:
        return {}
    rows = session.exec(
        select(LedgerEntry.person_id, func.count(), func.sum(LedgerEntry.points))
        .where(col(LedgerEntry.person_id).in_(person_ids), LedgerEntry.period == period,
               pending_clause())
        .group_by(col(LedgerEntry.person_id))
    ).all()
    return {pid: Pending(count, Decimal(points)) for pid, count, points in rows}


def pending_for_person(*, session: Session, person_id: int, period: str) -> list[LedgerEntry]:
    """A member's entries of a month still awaiting review."""
    return list(
        session.exec(
            select(LedgerEntry).where(
                LedgerEntry.person_id == person_id, LedgerEntry.period == period, pending_clause()
            )
        )
    )


def pending_in_branches(*, session: Session, secretary: Person) -> list[tuple[LedgerEntry, str]]:
    """Pending entries (with the member's name) in the branches the person is secretary of."""
    paths = [b.path for b in access.secretary_branches(session=session, person=secretary)]
    if not paths:
        return []
    rows = session.exec(
        select(LedgerEntry, Person.name, Organization.path)
        .join(Person, col(Person.id) == LedgerEntry.person_id)
        .join(Organization, col(Organization.id) == LedgerEntry.organization_id)
        .where(pending_clause())
        .order_by(col(LedgerEntry.id))
    ).all()
    return [(entry, name) for entry, name, path in rows if path.startswith(tuple(paths))]


def indicator_name(*, session: Session, entry: LedgerEntry) -> str:
    """The name members know an entry's indicator by, from the scheme it was scored under."""
    version = session.get(SchemeVersion, entry.scheme_version_id)
    scheme = schemes.scheme_of(version) if version else None
    indicator = scheme.indicator_by_code.get(entry.indicator_code) if scheme else None
    return indicator.name if indicator else entry.indicator_code
