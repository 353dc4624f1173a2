"""Spot checks (抽查): the committee draws a seeded, recorded random sample of approved
declarations for re-review; a failed check reverses the entry with the reason."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.domain.evaluation import EvaluationRefused, draw_sample
from app.domain.periods import parse_month
from app.domain.refusals import Refusal
from app.models import EntrySource, LedgerEntry, Organization, Person, SpotCheck, SpotCheckItem
from app.services import audit
from app.services.evaluation_base import actor_of
from app.services.evaluation_roles import is_committee_over
from app.services.ledger import approved_clause, revoke_entry

# Seeds are stored in a 32-bit integer column.
SEED_LIMIT = 2**31


def checkable_entries(*, session: Session, org: Organization, period: str) -> list[int]:
    """Ids of the approved, unreversed declarations of `period` in `org`'s subtree, ascending."""
    reversal = aliased(LedgerEntry)
    return list(session.exec(
        select(LedgerEntry.id)
        .join(Organization, col(Organization.id) == LedgerEntry.organization_id)
        .where(col(Organization.path).startswith(org.path), LedgerEntry.period == period,
               LedgerEntry.source == EntrySource.DECLARED, approved_clause(),
               ~exists().where(reversal.reversal_of_id == LedgerEntry.id))
        .order_by(col(LedgerEntry.id))
    ).all())


def draw_spot_check(
    *, session: Session, committee_actor: Person, org: Organization, period: str,
    size: int | None = None, percent: Decimal | None = None, seed: int | None = None,
    now: datetime,
) -> SpotCheck:
    """Draw a sample (size or percent) of the period's approved declarations, reproducibly."""
    # The seed and the population are recorded so that anyone can draw the same sample again.
    if not is_committee_over(session=session, person=committee_actor, org=org):
        raise EvaluationRefused("只有党委可以组织抽查", kind=Refusal.forbidden)
    parse_month(period)
    population = checkable_entries(session=session, org=org, period=period)
    if not population:
        raise EvaluationRefused(f"{period} 没有可抽查的已通过申报")
    seed = secrets.randbelow(SEED_LIMIT) if seed is None else seed
    if not 0 <= seed < SEED_LIMIT:
        raise EvaluationRefused(f"随机种子须为 0 至 {SEED_LIMIT - 1} 之间的整数")
    drawn = draw_sample(population, seed=seed, size=size, percent=percent)
    check = SpotCheck(organization_id=org.id or 0, period=period, seed=seed, size=size,
                      percent=percent, population=population, drawn=drawn,
                      created_by_id=committee_actor.id, created_by_label=committee_actor.name,
                      created_at=now)
    session.add(check)
    session.flush()
    session.add_all(SpotCheckItem(spot_check_id=check.id or 0, entry_id=entry_id)
                    for entry_id in drawn)
    audit.record(session=session, actor_id=committee_actor.id,
                 actor_label=committee_actor.name, action="draw", entity="spot_check",
                 entity_id=check.id,
                 after={"organization_id": org.id, "period": period, "seed": seed,
                        "population": len(population), "drawn": ",".join(map(str, drawn))})
    return check


def spot_check_items(*, session: Session, check: SpotCheck) -> list[SpotCheckItem]:
    """The drawn entries of a spot check, in draw order."""
    items = {item.entry_id: item for item in session.exec(
        select(SpotCheckItem).where(SpotCheckItem.spot_check_id == check.id))}
    return [items[entry_id] for entry_id in check.drawn]


def record_spot_check_result(
    *, session: Session, actor: Person, item_id: int, passed: bool, reason: str,
    now: datetime, tz: ZoneInfo,
) -> SpotCheckItem:
    """Record the re-review of one drawn entry; a failed one is reversed with the reason."""
    item = session.get(SpotCheckItem, item_id)
    check = session.get(SpotCheck, item.spot_check_id) if item else None
    org = session.get(Organization, check.organization_id) if check else None
    if item is None or org is None:
        raise EvaluationRefused(f"找不到抽查项 #{item_id}", kind=Refusal.not_found)
    if not is_committee_over(session=session, person=actor, org=org):
        raise EvaluationRefused("只有党委可以登记抽查结果", kind=Refusal.forbidden)
    if item.passed is not None:
        raise EvaluationRefused(f"抽查项 #{item_id} 已登记结果", kind=Refusal.conflict)
    entry = session.get(LedgerEntry, item.entry_id)
    assert entry is not None
    if actor.id in (entry.person_id, entry.created_by_id):
        raise EvaluationRefused("不能抽查本人的申报", kind=Refusal.forbidden)
    if not passed and not reason.strip():
        raise EvaluationRefused("抽查不通过时须写明理由")
    if not passed:
        reversal = revoke_entry(session=session, entry_id=entry.id or 0,
                                reason=f"抽查不通过：{reason.strip()}", actor=actor_of(actor),
                                today=now.astimezone(tz).date())
        item.reversal_entry_id = reversal.id
    item.passed = passed
    item.reason = reason.strip()
    item.checked_by_id = actor.id
    item.checked_at = now
    audit.record(session=session, actor_id=actor.id, actor_label=actor.name, action="check",
                 entity="spot_check_item", entity_id=item.id,
                 after={"entry_id": entry.id, "passed": passed, "reason": item.reason,
                        "reversal": item.reversal_entry_id})
    return item
