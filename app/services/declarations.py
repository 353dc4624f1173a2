"""Declarations (申报): a member declares a declared-source indicator, attaches evidence
(`app.services.evidence`), submits it as a pending ledger entry, and a designated reviewer
(指定专人审核, see `evaluation_roles`) approves or rejects it. Nobody reviews their own."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.domain.evaluation import EvaluationRefused, MonthState
from app.domain.periods import month_key_of
from app.domain.refusals import Refusal
from app.domain.scheme import Indicator, Source
from app.models import (
    Declaration,
    EntryReview,
    EntrySource,
    LedgerEntry,
    Organization,
    Person,
    RoleAssignment,
    SchemeVersion,
)
from app.services import audit, schemes
from app.services.evaluation_base import actor_of, find_month, scheme_for
from app.services.evaluation_roles import may_review_declaration
from app.services.evidence import files_of, own_draft
from app.services.ledger import pending_clause, record_entry, review_entry
from app.services.notices import Notice, send_to_person
from app.services.reports import branch_of

REVIEWED_KIND = "declaration-reviewed"


def declarable_indicators(*, session: Session, member: Person, period: str) -> list[Indicator]:
    """The indicators a member may declare in `period`, in scheme order."""
    scheme = scheme_for(session=session, org=branch_of(session, member), period=period)
    return [i for i in scheme.indicators if i.source is Source.declared]


def _require_month_open(session: Session, member: Person, period: str) -> None:
    # Once the month is scored, a new item would change a score already given.
    month = find_month(session=session, person_id=member.id or 0, period=period, lock=True)
    if month is not None and MonthState(month.state) not in (MonthState.open,
                                                              MonthState.self_evaluated):
        raise EvaluationRefused(f"{period} 的月度评价{MonthState(month.state).label}，"
                                "不能再申报该月事项，请记入下月")


def _indicator(session: Session, member: Person, period: str, code: str) -> Indicator:
    scheme = scheme_for(session=session, org=branch_of(session, member), period=period)
    indicator = scheme.indicator_by_code.get(code)
    if indicator is None:
        raise EvaluationRefused(f"积分方案中没有指标“{code}”")
    if indicator.source is not Source.declared:
        raise EvaluationRefused(f"“{indicator.name}”不是申报类指标")
    return indicator


def declare(*, session: Session, member: Person, indicator_code: str, description: str,
            occurred_on: date, now: datetime) -> Declaration:
    """Start a declaration; one whose indicator needs no evidence is submitted at once."""
    if not description.strip():
        raise EvaluationRefused("请写明申报说明")
    period = month_key_of(occurred_on)
    indicator = _indicator(session, member, period, indicator_code)
    _require_month_open(session, member, period)
    declaration = Declaration(person_id=member.id or 0, indicator_code=indicator.code,
                              description=description.strip(), occurred_on=occurred_on,
                              period=period, created_at=now)
    session.add(declaration)
    session.flush()
    audit.record(session=session, actor_id=member.id, actor_label=member.name, action="create",
                 entity="declaration", entity_id=declaration.id,
                 after={"indicator": indicator.code, "period": period,
                        "description": declaration.description})
    if not indicator.evidence_required:
        submit_declaration(session=session, member=member, declaration_id=declaration.id or 0,
                           now=now)
    return declaration


def submit_declaration(*, session: Session, member: Person, declaration_id: int,
                       now: datetime) -> LedgerEntry:
    """Submit a draft as a pending ledger entry carrying its evidence files."""
    declaration = own_draft(session=session, member=member, declaration_id=declaration_id)
    indicator = _indicator(session, member, declaration.period, declaration.indicator_code)
    _require_month_open(session, member, declaration.period)
    files = files_of(session=session, declaration_id=declaration_id)
    if indicator.evidence_required and not files:
        raise EvaluationRefused(f"“{indicator.name}”需要上传佐证材料后再提交")
    evidence = [{"file_id": f.id, "name": f.original_name, "type": f.content_type,
                 "sha256": f.sha256} for f in files]
    entry = record_entry(session=session, member_id=member.id or 0,
                         indicator_code=indicator.code, occurred_on=declaration.occurred_on,
                         reason=declaration.description, actor=actor_of(member),
                         evidence=evidence or None)
    declaration.entry_id = entry.id
    declaration.submitted_at = now
    return entry


def _entry_indicator(session: Session, entry: LedgerEntry) -> Indicator:
    version = session.get(SchemeVersion, entry.scheme_version_id)
    assert version is not None
    return schemes.scheme_of(version).indicator_by_code[entry.indicator_code]


def review_declaration(*, session: Session, reviewer: Person, entry_id: int, approve: bool,
                       reason: str) -> EntryReview:
    """Approve or reject a submitted declaration as its designated reviewer; never one's own."""
    entry = session.get(LedgerEntry, entry_id)
    if entry is None or entry.source != EntrySource.DECLARED:
        raise EvaluationRefused(f"找不到申报 S{entry_id}", kind=Refusal.not_found)
    if reviewer.id in (entry.person_id, entry.created_by_id):
        raise EvaluationRefused("不能审核自己的申报", kind=Refusal.forbidden)
    org = session.get(Organization, entry.organization_id)
    assert org is not None
    indicator = _entry_indicator(session, entry)
    if not may_review_declaration(session=session, reviewer=reviewer, member_org=org,
                                  indicator=indicator):
        raise EvaluationRefused("您不是该申报的指定审核人", kind=Refusal.forbidden)
    review = review_entry(session=session, entry_id=entry_id, actor=actor_of(reviewer),
                          approve=approve, reason=reason)
    member = session.get(Person, entry.person_id)
    assert member is not None
    verdict = "已通过" if approve else f"被驳回，理由：{review.reason}"
    send_to_person(session=session, person=member, kind=REVIEWED_KIND, key=f"entry-{entry_id}",
                   notice=Notice(f"您的申报 S{entry_id}（{indicator.name}）{verdict}。"))
    return review


def declarations_to_review(*, session: Session, reviewer: Person
                           ) -> list[tuple[LedgerEntry, Person]]:
    """Pending declarations the person may review (never their own), oldest first."""
    # Only subtrees the person holds some role over can hold declarations they may review.
    paths = session.exec(
        select(Organization.path)
        .join(RoleAssignment, col(RoleAssignment.organization_id) == Organization.id)
        .where(RoleAssignment.person_id == reviewer.id)
    ).all()
    if not paths:
        return []
    rows = session.exec(
        select(LedgerEntry, Person, Organization)
        .join(Person, col(Person.id) == LedgerEntry.person_id)
        .join(Organization, col(Organization.id) == LedgerEntry.organization_id)
        .where(LedgerEntry.source == EntrySource.DECLARED, pending_clause(),
               LedgerEntry.person_id != reviewer.id,
               or_(*(col(Organization.path).startswith(path) for path in set(paths))))
        .order_by(col(LedgerEntry.id))
    ).all()
    return [(entry, member) for entry, member, org in rows
            if may_review_declaration(session=session, reviewer=reviewer, member_org=org,
                                      indicator=_entry_indicator(session, entry))]
