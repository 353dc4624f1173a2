"""The member's month before publication: the self-evaluation (自评) and the secretary's score
(支部综合评分; the committee scores branch secretaries the same way).

Scores are per top-level dimension and always the ledger's score plus units of the dimension's
assessment indicator (see `app.domain.assessment`); the units are recorded in the ledger when
the committee publishes the month. Publication, objections and close: `evaluation_publish`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.domain.assessment import Basis, Plan, dimension_scores, limits, plan_dimensions, plan_total
from app.domain.evaluation import (
    Action,
    Capacity,
    EvaluationRefused,
    MonthState,
    SelfWindow,
    adjusted_scores,
    next_state,
    require_reason,
    require_self_evaluation_over,
    score_gap,
    self_evaluation_late,
    self_window,
)
from app.domain.periods import month_key, previous_month
from app.domain.refusals import Refusal
from app.domain.scheme import Scheme, ScoringMode
from app.models import LedgerEntry, MemberMonth, Organization, Person
from app.services.evaluation_base import (
    SYSTEM,
    active_member,
    actor_of,
    basis_for,
    find_month,
    last_day,
    month_row,
    move,
    scheme_for,
    score_texts,
    score_values,
)
from app.services.evaluation_roles import (
    capacity_of,
    is_branch_secretary,
    is_committee_over,
    scorer_of,
)
from app.services.ledger import pending_for_person, record_entry
from app.services.reports import branch_of


@dataclass(frozen=True)
class DimensionLine:
    """One dimension of the form: the ledger's score (the lowest it may be scored), the highest
    the assessment indicator can make of it, and the self and assessed scores once given."""

    code: str
    name: str
    max: Decimal
    ledger: Decimal
    high: Decimal
    self_score: Decimal | None
    assessed: Decimal | None


@dataclass(frozen=True)
class SelfEvaluationForm:
    """A member's month as the self-evaluation page (and the secretary) sees it."""

    period: str
    state: MonthState
    window: SelfWindow
    late: bool
    dimensions: list[DimensionLine]
    ledger_total: Decimal | None
    self_total: Decimal | None
    assessed_total: Decimal | None
    assessed_reason: str
    note: str
    pending: list[LedgerEntry]


def self_window_for(*, session: Session, org: Organization, period: str,
                    tz: ZoneInfo) -> SelfWindow:
    """When the self-evaluation of `period` opens and is due, under the scheme in force."""
    return self_window(period, scheme_for(session=session, org=org, period=period).evaluation, tz)


def evaluated_period(*, session: Session, org: Organization, now: datetime,
                     tz: ZoneInfo) -> str:
    """The month under evaluation at `org`: this month once its self-evaluation has opened,
    else last month (also when this month has no scheme: only an earlier one can be)."""
    this_month = month_key(now, tz)
    try:
        window = self_window_for(session=session, org=org, period=this_month, tz=tz)
    except EvaluationRefused:
        return previous_month(this_month)
    return this_month if now >= window.opens_at else previous_month(this_month)


def self_evaluation_form(*, session: Session, member: Person, period: str, now: datetime,
                         tz: ZoneInfo) -> SelfEvaluationForm:
    """The member's month prefilled from the ledger, with the limits the scheme allows."""
    branch = branch_of(session, member)
    scheme = scheme_for(session=session, org=branch, period=period)
    basis = basis_for(session=session, branch=branch, person_id=member.id or 0, scheme=scheme,
                      period=period)
    month = find_month(session=session, person_id=member.id or 0, period=period)
    own = score_values(month.self_scores if month else None)
    assessed = score_values(month.assessed_scores if month else None)
    window = self_window(period, scheme.evaluation, tz)
    bounds = limits(basis)
    lines = [
        DimensionLine(d.code, d.name, d.max, bounds[d.code].low, bounds[d.code].high,
                      own.get(d.code), assessed.get(d.code))
        for d in scheme.dimensions
    ]
    return SelfEvaluationForm(
        period=period, state=MonthState(month.state) if month else MonthState.open,
        window=window, late=now >= window.deadline_at, dimensions=lines,
        ledger_total=basis.score().total, self_total=month.self_total if month else None,
        assessed_total=month.assessed_total if month else None,
        assessed_reason=month.assessed_reason if month else "",
        note=month.self_note if month else "",
        pending=pending_for_person(session=session, person_id=member.id or 0, period=period),
    )


def _record_timeliness(session: Session, member: Person, scheme: Scheme, period: str,
                       *, late: bool) -> None:
    # The scheme may score confirming on time (or deduct for missing the deadline).
    rules = scheme.evaluation
    code = rules.late if late else rules.on_time
    if code is not None:
        why = "月度自评逾期" if late else "按时完成月度自评"
        record_entry(session=session, member_id=member.id or 0, indicator_code=code,
                     occurred_on=last_day(period), reason=why, actor=SYSTEM)


def confirm_self_evaluation(
    *, session: Session, member: Person, period: str,
    adjustments: Mapping[str, Decimal] | None, note: str, now: datetime, tz: ZoneInfo,
) -> MemberMonth:
    """Confirm the month's self score: the ledger's, adjusted within the limits; late is kept."""
    branch = branch_of(session, member)
    scheme = scheme_for(session=session, org=branch, period=period)
    month = month_row(session=session, member=member, branch=branch, period=period, now=now)
    to = next_state(MonthState(month.state), Action.confirm, Capacity.member)
    late = self_evaluation_late(self_window(period, scheme.evaluation, tz), now)
    _record_timeliness(session, member, scheme, period, late=late)
    basis = basis_for(session=session, branch=branch, person_id=member.id or 0, scheme=scheme,
                      period=period)
    bounds = limits(basis)
    ledger = {code: limit.low for code, limit in bounds.items()}
    wanted = adjusted_scores(ledger, adjustments or {}, bounds)
    plan = plan_dimensions(basis, wanted)
    month.self_scores = score_texts(dimension_scores(plan.score))
    month.self_total = plan.score.total
    month.self_note = note.strip()
    month.self_confirmed_at = now
    month.self_late = late
    move(session=session, month=month, action=Action.confirm, to=to, by=actor_of(member),
         reason=month.self_note, now=now)
    return month


def _plan(basis: Basis, month: MemberMonth,
          assessed: Decimal | Mapping[str, Decimal]) -> Plan:
    mode = basis.scheme.evaluation.scoring
    if mode is ScoringMode.total:
        if isinstance(assessed, Mapping):
            raise EvaluationRefused("本方案评总分，请给出本月总分")
        return plan_total(basis, assessed)
    if not isinstance(assessed, Mapping):
        raise EvaluationRefused("本方案按维度评分，请逐项给出各维度的分数")
    # Dimensions not given keep the member's self score (within what is reachable now).
    own = score_values(month.self_scores)
    bounds = limits(basis)
    kept = {code: max(b.low, min(b.high, own[code])) for code, b in bounds.items() if code in own}
    return plan_dimensions(basis, {**kept, **assessed})


def _store_score(session: Session, month: MemberMonth, plan: Plan, *, action: Action,
                 to: MonthState, by: Person, reason: str, now: datetime) -> None:
    month.assessed_scores = score_texts(dimension_scores(plan.score))
    month.assessed_total = plan.score.total
    month.assessment_units = dict(plan.units)
    month.assessed_reason = reason.strip()
    month.assessed_by_id = by.id
    month.assessed_at = now
    move(session=session, month=month, action=action, to=to, by=actor_of(by),
         reason=month.assessed_reason, now=now)


def score_member(
    *, session: Session, secretary: Person, member_id: int, period: str,
    assessed: Decimal | Mapping[str, Decimal], reason: str, now: datetime, tz: ZoneInfo,
) -> MemberMonth:
    """Score a member's month, in total or per dimension as the scheme says."""
    # A score far from the self score needs a reason; the committee scores branch secretaries.
    member = active_member(session=session, person_id=member_id)
    branch = branch_of(session, member)
    scheme = scheme_for(session=session, org=branch, period=period)
    scorer = scorer_of(session=session, member=member, branch=branch)
    capacity = capacity_of(session=session, actor=secretary, member=member, branch=branch,
                           wanted=scorer)
    month = month_row(session=session, member=member, branch=branch, period=period, now=now)
    state = MonthState(month.state)
    to = next_state(state, Action.score, capacity, scorer=scorer)
    if state is MonthState.open:
        require_self_evaluation_over(self_window(period, scheme.evaluation, tz), now)
        month.self_late = True
        _record_timeliness(session, member, scheme, period, late=True)
    basis = basis_for(session=session, branch=branch, person_id=member.id or 0, scheme=scheme,
                      period=period)
    plan = _plan(basis, month, assessed)
    # Without a self score, the ledger's own score is what the secretary departs from.
    start = basis.score()
    reference = score_values(month.self_scores) or dimension_scores(start)
    reference_total = month.self_total if month.self_scores else start.total
    gap = score_gap(reference, dimension_scores(plan.score), reference_total, plan.score.total)
    require_reason(gap, reason, scheme.evaluation)
    _store_score(session, month, plan, action=Action.score, to=to, by=secretary, reason=reason,
                 now=now)
    return month


@dataclass(frozen=True)
class AcceptOutcome:
    """What a batch acceptance did: months scored as self-evaluated, and who was left, why."""

    accepted: list[MemberMonth]
    skipped: list[tuple[str, str]]


def accept_self_scores(*, session: Session, secretary: Person, branch: Organization,
                       period: str, now: datetime) -> AcceptOutcome:
    """Score every self-evaluated member the actor scores in the branch as they self-scored."""
    if not (is_branch_secretary(session=session, person=secretary, branch=branch)
            or is_committee_over(session=session, person=secretary, org=branch)):
        raise EvaluationRefused("只能给本支部党员评分", kind=Refusal.forbidden)
    scheme = scheme_for(session=session, org=branch, period=period)
    months = session.exec(
        select(MemberMonth)
        .where(MemberMonth.branch_id == branch.id, MemberMonth.period == period,
               MemberMonth.state == MonthState.self_evaluated)
        .order_by(col(MemberMonth.person_id))
        .with_for_update()
    ).all()
    outcome = AcceptOutcome([], [])
    for month in months:
        member = session.get(Person, month.person_id)
        assert member is not None
        scorer = scorer_of(session=session, member=member, branch=branch)
        capacity = capacity_of(session=session, actor=secretary, member=member, branch=branch,
                               wanted=scorer)
        try:
            to = next_state(MonthState(month.state), Action.accept, capacity, scorer=scorer)
            basis = basis_for(session=session, branch=branch, person_id=member.id or 0,
                              scheme=scheme, period=period)
            plan = plan_dimensions(basis, score_values(month.self_scores))
        except EvaluationRefused as refused:
            # Someone else's to score, or the ledger moved since: scored one by one instead.
            outcome.skipped.append((member.name, str(refused)))
            continue
        _store_score(session, month, plan, action=Action.accept, to=to, by=secretary,
                     reason="", now=now)
        outcome.accepted.append(month)
    return outcome
