"""The committee's part of the month: review and publication (公示), objections (异议) and
their answers, and the close once the objection window has ended with nothing open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from app.domain.assessment import points_before_veto
from app.domain.evaluation import (
    Action,
    Capacity,
    EvaluationRefused,
    MonthState,
    next_state,
    objection_deadline,
)
from app.domain.refusals import Refusal
from app.models import (
    BranchMonth,
    EntrySource,
    LedgerEntry,
    MemberMonth,
    Objection,
    ObjectionStatus,
    Organization,
    Person,
)
from app.render.board_png import points_text
from app.services import evaluation_notices as notices
from app.services.evaluation_base import (
    SYSTEM,
    actor_of,
    basis_for,
    branch_members,
    branch_month_row,
    find_branch_month,
    find_month,
    last_day,
    move,
    move_branch,
    scheme_for,
)
from app.services.evaluation_roles import capacity_of, is_committee_over
from app.services.ledger import pending_clause, record_entry, review_entry
from app.services.month_close import CloseOutcome, close_month
from app.services.notices import Notice
from app.services.reports import live_scores


def _require_committee(session: Session, person: Person, branch: Organization, what: str) -> None:
    if not is_committee_over(session=session, person=person, org=branch):
        raise EvaluationRefused(f"只有党委可以{what}", kind=Refusal.forbidden)


@dataclass(frozen=True)
class Publication:
    """A published branch month: its rows, the group post, and how many groups it went to."""

    branch_month: BranchMonth
    months: list[MemberMonth]
    notice: Notice
    groups_queued: int


def _months_of(session: Session, branch: Organization, period: str) -> list[MemberMonth]:
    return list(session.exec(
        select(MemberMonth)
        .where(MemberMonth.branch_id == branch.id, MemberMonth.period == period)
        .order_by(col(MemberMonth.person_id))
        .with_for_update()
    ))


def _check_publishable(session: Session, publisher: Person, people: list[Person],
                       months: dict[int, MemberMonth], period: str) -> None:
    # Without members there is nothing to publish, and closing such a month later would close
    # the whole subtree (a committee's branches) through month close.
    if not people:
        raise EvaluationRefused("该组织没有在此评议的党员，无需公示")
    unscored = [p.name for p in people
                if p.id not in months or months[p.id].state != MonthState.scored]
    if unscored:
        raise EvaluationRefused(f"以下党员尚未评分，不能公示：{'、'.join(unscored)}",
                                kind=Refusal.conflict)
    pending = session.exec(
        select(func.count()).select_from(LedgerEntry).where(
            col(LedgerEntry.person_id).in_([p.id for p in people]),
            LedgerEntry.period == period, pending_clause())
    ).one()
    if pending:
        raise EvaluationRefused(f"本支部本月还有 {pending} 条待审核的记录，请审核后再公示")
    # Publishing approves the scores' ledger entries: nobody approves their own (see ledger).
    for month in months.values():
        if month.assessment_units and publisher.id in (month.person_id, month.assessed_by_id):
            whose = "您本人的" if publisher.id == month.person_id else "由您评定的"
            raise EvaluationRefused(f"本支部有{whose}月度评分，需由其他党委成员审定公示",
                                    kind=Refusal.forbidden)


def _record_units(session: Session, month: MemberMonth, publisher: Person) -> None:
    scorer = session.get(Person, month.assessed_by_id)
    assert scorer is not None
    why = f"月度综合评分：{month.assessed_reason or '采纳自评分'}"
    for code, count in (month.assessment_units or {}).items():
        entry = record_entry(session=session, member_id=month.person_id, indicator_code=code,
                             count=int(count), occurred_on=last_day(month.period), reason=why,
                             actor=actor_of(scorer))
        review_entry(session=session, entry_id=entry.id or 0, actor=actor_of(publisher),
                     approve=True, reason="党委审定公示")


def publish_branch_month(
    *, session: Session, committee_actor: Person, branch: Organization, period: str,
    now: datetime, tz: ZoneInfo, objection_days: int | None = None,
    details_url: str | None = None,
) -> Publication:
    """Lock and publish a branch's month: scores into the ledger, posts queued, objections open."""
    # The scores' entries are made by their scorers and approved by the publishing committee.
    _require_committee(session, committee_actor, branch, "审定公示月度评价")
    scheme = scheme_for(session=session, org=branch, period=period)
    branch_month = branch_month_row(session=session, branch=branch, period=period, now=now)
    if branch_month.published_at is not None:
        raise EvaluationRefused("本月评价已公示，无需重复公示", kind=Refusal.conflict)
    people = branch_members(session=session, branch=branch)
    months = {m.person_id: m for m in _months_of(session, branch, period)}
    _check_publishable(session, committee_actor, people, months, period)
    days = scheme.evaluation.objection_days if objection_days is None else objection_days
    deadline = objection_deadline(now, days)
    for month in months.values():
        to = next_state(MonthState(month.state), Action.publish, Capacity.committee)
        _record_units(session, month, committee_actor)
        month.published_at = now
        move(session=session, month=month, action=Action.publish, to=to,
             by=actor_of(committee_actor), reason="", now=now)
    branch_month.published_at = now
    branch_month.published_by_id = committee_actor.id
    branch_month.objection_deadline = deadline
    move_branch(session=session, branch_month=branch_month, action=Action.publish,
                states=(MonthState.scored, MonthState.published), by=actor_of(committee_actor),
                reason=f"异议期 {days} 天", now=now)
    scores = live_scores(session=session, org=branch, person_ids=[p.id or 0 for p in people],
                         period=period)
    notice = notices.publication_notice(
        branch=branch, period=period, scheme=scheme, deadline=deadline, tz=tz,
        scores=[(p, scores[p.id or 0]) for p in people], details_url=details_url)
    queued = notices.queue_publication(session=session, branch=branch, period=period,
                                       notice=notice)
    for person in people:
        notices.queue_result(session=session, member=person, period=period,
                             score=scores[person.id or 0],
                             reason=months[person.id or 0].assessed_reason,
                             deadline=deadline, tz=tz)
    return Publication(branch_month, list(months.values()), notice, queued)


def raise_objection(*, session: Session, member: Person, period: str, reason: str,
                    now: datetime, tz: ZoneInfo) -> Objection:
    """Object to one's own published month, within the objection window, with a reason."""
    if not reason.strip():
        raise EvaluationRefused("请写明异议理由")
    month = find_month(session=session, person_id=member.id or 0, period=period, lock=True)
    if month is None:
        raise EvaluationRefused("本月评价尚未公示，暂不能提出异议")
    to = next_state(MonthState(month.state), Action.object, Capacity.member)
    branch = session.get(Organization, month.branch_id)
    assert branch is not None
    branch_month = find_branch_month(session=session, branch=branch, period=period)
    assert branch_month is not None and branch_month.objection_deadline is not None
    if now >= branch_month.objection_deadline:
        raise EvaluationRefused(
            f"异议期已于 {notices.when_text(branch_month.objection_deadline, tz)} 结束",
            kind=Refusal.conflict)
    objection = Objection(member_month_id=month.id or 0, raised_by_id=member.id or 0,
                          reason=reason.strip(), raised_at=now)
    session.add(objection)
    session.flush()
    move(session=session, month=month, action=Action.object, to=to, by=actor_of(member),
         reason=objection.reason, now=now)
    return objection


def _correct(session: Session, month: MemberMonth, answerer: Person, points: Decimal | None,
             indicator_code: str | None, answer: str) -> LedgerEntry:
    if points is None or not indicator_code:
        raise EvaluationRefused("支持异议时须给出更正的指标和分值")
    branch = session.get(Organization, month.branch_id)
    assert branch is not None
    scheme = scheme_for(session=session, org=branch, period=month.period)
    indicator = scheme.indicator_by_code.get(indicator_code)
    if indicator is None:
        raise EvaluationRefused(f"积分方案中没有指标“{indicator_code}”")
    count = points / indicator.points if indicator.points else Decimal(0)
    if count <= 0 or count != count.to_integral_value():
        raise EvaluationRefused(
            f"更正分值须为指标“{indicator.name}”分值（{points_text(indicator.points)} 分）"
            "的正整数倍")
    basis = basis_for(session=session, branch=branch, person_id=month.person_id, scheme=scheme,
                      period=month.period)
    effect = (points_before_veto(basis.score({indicator.code: int(count)}))
              - points_before_veto(basis.score()))
    if effect != points:
        raise EvaluationRefused(f"按方案上限，该更正只会使本月积分变化 {points_text(effect)} 分，"
                                "请调整更正分值或指标")
    # A correction is a new entry in force at once, never an edit of the month's entries.
    return record_entry(session=session, member_id=month.person_id,
                        indicator_code=indicator.code, count=int(count),
                        occurred_on=last_day(month.period), reason=f"异议更正：{answer}",
                        actor=actor_of(answerer), source=EntrySource.ADJUSTMENT)


def answer_objection(
    *, session: Session, actor: Person, objection_id: int, uphold: bool, answer: str,
    correction_points: Decimal | None, indicator_code: str | None, now: datetime,
) -> Objection:
    """Answer an objection (secretary or committee); upheld → a correcting ledger entry."""
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise EvaluationRefused(f"找不到异议 Y{objection_id}", kind=Refusal.not_found)
    month = session.get(MemberMonth, objection.member_month_id)
    member = session.get(Person, objection.raised_by_id)
    assert month is not None and member is not None
    branch = session.get(Organization, month.branch_id)
    assert branch is not None
    capacity = capacity_of(session=session, actor=actor, member=member, branch=branch,
                           wanted=Capacity.secretary)
    to = next_state(MonthState(month.state), Action.answer, capacity)
    if objection.status != ObjectionStatus.OPEN:
        raise EvaluationRefused(f"异议 Y{objection_id} 已答复", kind=Refusal.conflict)
    if not answer.strip():
        raise EvaluationRefused("请填写答复意见")
    if uphold:
        entry = _correct(session, month, actor, correction_points, indicator_code,
                         answer.strip())
        objection.correction_entry_id = entry.id
    objection.status = ObjectionStatus.UPHELD if uphold else ObjectionStatus.DISMISSED
    objection.answer = answer.strip()
    objection.answered_by_id = actor.id
    objection.answered_at = now
    move(session=session, month=month, action=Action.answer, to=to, by=actor_of(actor),
         reason=objection.answer, now=now)
    notices.queue_answer(session=session, member=member, objection=objection)
    return objection


def close_branch_month(*, session: Session, actor: Person | None, branch: Organization,
                       period: str, now: datetime, tz: ZoneInfo) -> CloseOutcome:
    """Close a published branch month through month close once its window ended, none open."""
    # No actor: the scheduler closes it.
    by = SYSTEM if actor is None else actor_of(actor)
    if actor is not None:
        _require_committee(session, actor, branch, "结账")
    branch_month = find_branch_month(session=session, branch=branch, period=period)
    if branch_month is None or branch_month.objection_deadline is None:
        raise EvaluationRefused("本月评价尚未公示，不能结账")
    if branch_month.closed_at is not None:
        raise EvaluationRefused("本月已结账，无需重复结账", kind=Refusal.conflict)
    if now < branch_month.objection_deadline:
        raise EvaluationRefused(
            f"异议期至 {notices.when_text(branch_month.objection_deadline, tz)} 结束，届时才能结账")
    capacity = Capacity.system if actor is None else Capacity.committee
    months = _months_of(session, branch, period)
    moves = [(month, next_state(MonthState(month.state), Action.close, capacity))
             for month in months]
    outcome = close_month(session=session, org=branch, period=period, actor_label=by.label)
    for month, to in moves:
        month.closed_at = now
        move(session=session, month=month, action=Action.close, to=to, by=by, reason="",
             now=now)
    branch_month.closed_at = now
    move_branch(session=session, branch_month=branch_month, action=Action.close,
                states=(MonthState.published, MonthState.closed), by=by, reason="", now=now)
    return outcome


@dataclass(frozen=True)
class DueCloses:
    """What the scheduled close did: branches closed, and those still waiting, with why."""

    closed: list[Organization]
    waiting: list[tuple[Organization, str]]


def close_due(*, session: Session, now: datetime, tz: ZoneInfo) -> DueCloses:
    """Close every branch month whose objection window has ended; the others wait, with why."""
    due = session.exec(
        select(BranchMonth, Organization)
        .join(Organization, col(Organization.id) == BranchMonth.branch_id)
        .where(col(BranchMonth.closed_at).is_(None),
               col(BranchMonth.objection_deadline).is_not(None),
               col(BranchMonth.objection_deadline) <= now)
        .order_by(col(BranchMonth.period), col(BranchMonth.id))
    ).all()
    result = DueCloses([], [])
    for branch_month, branch in due:
        try:
            with session.begin_nested():
                close_branch_month(session=session, actor=None, branch=branch,
                                   period=branch_month.period, now=now, tz=tz)
        except ValueError as refused:
            result.waiting.append((branch, str(refused)))
            continue
        result.closed.append(branch)
    return result
