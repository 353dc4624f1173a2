"""The monthly evaluation (一月一初评) in the mini-app API: a member's month (self-evaluation,
score, result, objections), a branch's month for its secretary and the committee (scoring,
publication, answers, close), and the committee's spot checks. Every rule is the services'.

The view builders (`my_evaluation`, `branch_evaluation`, `branch_list`) are what the H5 pages
render too, so a page and the API always show the same month.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from app.db import utcnow
from app.deps import EngineDep, SessionDep, SettingsDep
from app.domain.evaluation import Capacity, MonthState
from app.domain.scheme import Scheme
from app.domain.vocab import OrgKind
from app.links import board_page_url
from app.models import (
    BranchMonth,
    LedgerEntry,
    MemberMonth,
    MemberType,
    Objection,
    ObjectionStatus,
    Organization,
    Person,
    RoleAssignment,
    SpotCheck,
    SpotCheckItem,
)
from app.render.board_png import points_text
from app.services.declarations import declarations_to_review
from app.services.evaluation import (
    DimensionLine,
    SelfEvaluationForm,
    accept_self_scores,
    confirm_self_evaluation,
    score_member,
    self_evaluation_form,
)
from app.services.evaluation_base import branch_members, find_month, scheme_for
from app.services.evaluation_publish import (
    answer_objection,
    close_branch_month,
    publish_branch_month,
    raise_objection,
)
from app.services.evaluation_roles import (
    capacity_of,
    is_branch_secretary,
    is_committee_over,
    scorer_of,
)
from app.services.evaluation_status import BranchProgress, evaluation_status
from app.services.ledger import indicator_name
from app.services.reports import branch_of, live_scores
from app.services.spot_checks import (
    draw_spot_check,
    record_spot_check_result,
    spot_check_items,
)
from miniapp_api.api_activities import Problem, local_when
from miniapp_api.api_declarations import DeclarationSummary, my_declarations
from miniapp_api.api_me import Points
from miniapp_api.deps import ApiPerson
from miniapp_api.evaluation_common import (
    EvidenceRef,
    answering,
    evidence_refs,
    month_or_default,
    month_param,
    writing,
)
from miniapp_api.templating import period_label

router = APIRouter(prefix="/api/v1/evaluation", tags=["月度评议"])

# Scores a person types: two places at most, far beyond any scheme's maximum refused outright.
ScoreValue = Annotated[Decimal, Field(ge=-1000, le=1000, decimal_places=2)]
NOT_MEMBER = "您不是党员，不参加党员月度评议"
NOT_MANAGER = "只有本支部书记和党委可以查看支部月度评议"
# States in which the month's score is out and the member sees the result.
_PUBLISHED = frozenset({MonthState.published, MonthState.objected, MonthState.closed})
_SCORABLE = frozenset({MonthState.open, MonthState.self_evaluated, MonthState.scored})

OBJECTION_LABELS = {
    ObjectionStatus.OPEN: "待答复",
    ObjectionStatus.UPHELD: "已支持",
    ObjectionStatus.DISMISSED: "未支持",
}


# ---- response models ------------------------------------------------------------------------


class DimensionRow(BaseModel):
    """One dimension of a member's month: the ledger's score is also the lowest it may be given."""

    code: str = Field(examples=["political"])
    name: str = Field(examples=["政治合格"])
    max: Points = Field(examples=[25])
    ledger: Points = Field(description="台账已记分数（最低分）", examples=[5])
    high: Points = Field(description="综合评分最多可评到的分数", examples=[15])
    step: Points | None = Field(description="综合评分的单位；null 为按台账计分，不可调整",
                                examples=[1])
    self_score: Points | None = Field(examples=[10])
    assessed: Points | None = Field(examples=[10])
    proposed: Points = Field(description="评分表单的初始值：已评分、自评分或台账分，限于可评范围内",
                             examples=[10])


class PendingItem(BaseModel):
    """An entry of the month still waiting for review."""

    entry_id: int = Field(examples=[41])
    indicator_name: str = Field(examples=["参加志愿服务活动"])
    points: Points = Field(examples=[3])
    reason: str = Field(examples=["社区志愿服务"])


class ObjectionView(BaseModel):
    """An objection to a published month, and its answer."""

    id: int = Field(examples=[2])
    code: str = Field(examples=["Y2"])
    member_id: int = Field(examples=[6])
    member_name: str = Field(examples=["李四"])
    reason: str = Field(examples=["学习心得已按时提交，被误驳回"])
    raised_at: datetime
    status: ObjectionStatus = Field(examples=["open"])
    status_label: str = Field(examples=["待答复"])
    answer: str = Field(examples=[""])
    answered_by: str | None = Field(default=None, examples=["王书记"])
    answered_at: datetime | None = None
    correction_points: Points | None = Field(default=None, examples=[2])
    can_answer: bool = Field(default=False, examples=[True])


class MonthView(BaseModel):
    """A member's month as the self-evaluation form and the secretary's table show it."""

    person_id: int = Field(examples=[6])
    name: str = Field(examples=["李四"])
    period: str = Field(examples=["2026-11"])
    period_label: str = Field(examples=["2026年11月"])
    state: MonthState = Field(examples=["self_evaluated"])
    state_label: str = Field(examples=["已自评"])
    opens_at: datetime = Field(description="自评开放时间")
    deadline_at: datetime = Field(description="自评截止时间（此刻起算逾期）")
    last_day: date = Field(description="自评截止日（含当日）", examples=["2026-12-05"])
    self_open: bool = Field(description="自评是否已开放", examples=[True])
    late: bool = Field(description="现在确认是否算逾期", examples=[False])
    self_late: bool = Field(description="自评已记为逾期（逾期确认或未自评即被评分）",
                            examples=[False])
    self_confirmed_at: datetime | None = None
    scoring: Literal["dimension", "total"] = Field(examples=["dimension"])
    dimensions: list[DimensionRow]
    ledger_total: Points | None = Field(examples=[9])
    self_total: Points | None = Field(examples=[19])
    self_note: str = Field(examples=["按时参加各项活动"])
    assessed_total: Points | None = Field(examples=[19])
    assessed_reason: str = Field(examples=[""])
    assessed_by: str | None = Field(default=None, examples=["王书记"])
    pending: list[PendingItem]


class MyEvaluation(MonthView):
    """My month: the form, the score, the published result and my objections."""

    can_confirm: bool = Field(examples=[True])
    on_time_points: Points | None = Field(
        description="现在确认自评时方案另记的按时自评分（已计入各项上限）", examples=[2])
    published_at: datetime | None = None
    result_total: Points | None = Field(description="公示后的本月积分（含更正）", examples=[19])
    objection_deadline: datetime | None = None
    can_object: bool = Field(examples=[False])
    objections: list[ObjectionView]
    declarations: list[DeclarationSummary]
    reviews_waiting: int = Field(description="待我审核的申报条数", examples=[0])


class MonthAnswer(BaseModel):
    """A member's month after a step."""

    person_id: int = Field(examples=[6])
    period: str = Field(examples=["2026-11"])
    state: MonthState = Field(examples=["scored"])
    state_label: str = Field(examples=["已评分"])
    total: Points | None = Field(examples=[19])
    message: str = Field(examples=["已为李四评分：19 分。"])


class ObjectionRaised(ObjectionView):
    """A new objection."""

    message: str = Field(examples=["已提出异议 Y2，答复后会私信通知您。"])


class MemberRow(MonthView):
    """A member's line in the branch's month."""

    is_branch_secretary: bool = Field(description="支部书记由党委评分", examples=[False])
    can_score: bool = Field(examples=[True])


class BranchCounts(BaseModel):
    """A branch's month in numbers."""

    members: int = Field(examples=[12])
    self_evaluated: int = Field(examples=[11])
    late: int = Field(examples=[1])
    scored: int = Field(examples=[12])
    published: int = Field(examples=[0])
    objections_open: int = Field(examples=[0])


class IndicatorRef(BaseModel):
    """An indicator a correction can be recorded under."""

    code: str = Field(examples=["study_notes"])
    name: str = Field(examples=["提交学习心得体会"])
    points: Points = Field(examples=[2])


class BranchProgressOut(BaseModel):
    """A branch's progress, for the list of branches one manages."""

    branch_id: int = Field(examples=[4])
    branch_name: str = Field(examples=["生产第一党支部"])
    phase: str = Field(examples=["scoring"])
    phase_label: str = Field(examples=["评分中"])
    counts: BranchCounts
    objection_deadline: datetime | None = None


class BranchList(BaseModel):
    """The branches whose month this person scores or reviews."""

    period: str = Field(examples=["2026-11"])
    period_label: str = Field(examples=["2026年11月"])
    items: list[BranchProgressOut]


class BranchEvaluation(BranchProgressOut):
    """A branch's month for its secretary and the committee."""

    period: str = Field(examples=["2026-11"])
    period_label: str = Field(examples=["2026年11月"])
    published_at: datetime | None = None
    closed_at: datetime | None = None
    scoring: Literal["dimension", "total"] = Field(examples=["dimension"])
    score_margin: Points = Field(description="评分与自评相差超过此值须写理由", examples=[2])
    is_secretary: bool = Field(examples=[True])
    is_committee: bool = Field(examples=[False])
    can_accept: bool = Field(description="是否有可一键采纳的自评分", examples=[True])
    can_publish: bool = Field(examples=[False])
    can_close: bool = Field(examples=[False])
    correction_indicators: list[IndicatorRef]
    objections: list[ObjectionView]
    rows: list[MemberRow]


class Skipped(BaseModel):
    """A member a batch acceptance left for scoring one by one, and why."""

    name: str = Field(examples=["王书记"])
    reason: str = Field(examples=["不能给自己评分"])


class AcceptAnswer(BaseModel):
    """What 一键采纳自评分 did."""

    accepted: list[str] = Field(examples=[["张三", "李四"]])
    skipped: list[Skipped]
    message: str = Field(examples=["已采纳 2 人的自评分。"])


class PublishAnswer(BaseModel):
    """A published branch month."""

    branch_id: int = Field(examples=[4])
    period: str = Field(examples=["2026-11"])
    published_at: datetime
    objection_deadline: datetime
    groups_queued: int = Field(description="公示已排队发往的支部群数", examples=[1])
    message: str = Field(examples=["已审定公示，异议期至 12月11日 10:00。"])


class CloseAnswer(BaseModel):
    """A closed branch month."""

    branch_id: int = Field(examples=[4])
    period: str = Field(examples=["2026-11"])
    members: int = Field(examples=[12])
    message: str = Field(examples=["生产第一党支部 2026年11月 已结账。"])


class SpotItemOut(BaseModel):
    """One drawn declaration and the outcome of its re-review."""

    id: int = Field(examples=[5])
    entry_id: int = Field(examples=[41])
    code: str = Field(examples=["S41"])
    member_name: str = Field(examples=["张三"])
    indicator_name: str = Field(examples=["参加志愿服务活动"])
    points: Points = Field(examples=[3])
    description: str = Field(examples=["社区志愿服务"])
    evidence: list[EvidenceRef]
    passed: bool | None = Field(examples=[None])
    result_reason: str = Field(examples=[""])
    checked_at: datetime | None = None
    reversal_entry_id: int | None = None


class SpotCheckOut(BaseModel):
    """A spot check: the recorded draw (seed and population) and its items."""

    id: int = Field(examples=[1])
    org_id: int = Field(examples=[1])
    org_name: str = Field(examples=["示范集团党委"])
    period: str = Field(examples=["2026-11"])
    seed: int = Field(description="随机种子：同一种子和候选可重现抽样", examples=[7])
    size: int | None = Field(examples=[2])
    percent: Points | None = Field(examples=[None])
    population: int = Field(description="候选条数", examples=[9])
    items: list[SpotItemOut]
    message: str = Field(default="", examples=["已从 9 条已通过的申报中抽取 2 条。"])


# ---- request bodies -------------------------------------------------------------------------


class PeriodIn(BaseModel):
    """The month acted on."""

    period: str = Field(max_length=20, examples=["2026-11"])


class SelfIn(PeriodIn):
    """My self-evaluation: points added to the ledger's score per dimension, and a note."""

    adjustments: dict[str, ScoreValue] = Field(default_factory=dict, max_length=20,
                                               examples=[{"political": 5}])
    note: str = Field(default="", max_length=500, examples=["按时参加各项活动"])


class ObjectionIn(PeriodIn):
    """An objection to my published month."""

    reason: str = Field(max_length=1000, examples=["学习心得已按时提交，被误驳回"])


class ScoreIn(PeriodIn):
    """A member's assessed score: per dimension (`scores`) or a total, as the scheme says."""

    scores: dict[str, ScoreValue] | None = Field(default=None, max_length=20,
                                                 examples=[{"political": 10}])
    total: ScoreValue | None = Field(default=None, examples=[None])
    reason: str = Field(default="", max_length=500, examples=["学习心得未按要求提交"])


class AnswerIn(BaseModel):
    """An answer to an objection; upholding it records a correction under an indicator."""

    uphold: bool = Field(examples=[True])
    answer: str = Field(max_length=1000, examples=["经核实心得已提交，予以更正"])
    correction_points: ScoreValue | None = Field(default=None, examples=[2])
    indicator_code: str | None = Field(default=None, max_length=64, examples=["study_notes"])


class SpotCheckIn(PeriodIn):
    """A draw of approved declarations in an organisation's subtree: a size or a percentage."""

    org_id: int = Field(examples=[1])
    size: int | None = Field(default=None, ge=1, le=10000, examples=[2])
    percent: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=2,
                                    examples=[None])
    seed: int | None = Field(default=None, ge=0, lt=2**31, examples=[7])


class SpotResultIn(BaseModel):
    """The outcome of one re-review; a failed one needs a reason and is reversed."""

    passed: bool = Field(examples=[False])
    reason: str = Field(default="", max_length=500, examples=["照片为网络图片"])


# ---- view builders --------------------------------------------------------------------------


def _require_month(raw: str) -> str:
    period = month_param(raw)
    if period is None:
        raise HTTPException(400, "请给出月份，例如 2026-11")
    return period


def _require_party_member(person: Person) -> None:
    if person.member_type == MemberType.masses:
        raise HTTPException(403, NOT_MEMBER)


def _name(session: Session, person_id: int | None) -> str | None:
    person = session.get(Person, person_id) if person_id else None
    return person.name if person else None


def _proposed(line: DimensionLine) -> Decimal:
    # The ledger may have moved since the self score (a declaration approved later): a score
    # outside what can be given now would only be refused.
    given = next((v for v in (line.assessed, line.self_score) if v is not None), line.ledger)
    return max(line.ledger, min(line.high, given))


def _dimensions(scheme: Scheme, form: SelfEvaluationForm) -> list[DimensionRow]:
    units = {dim: scheme.indicator_by_code[code].points
             for dim, code in scheme.evaluation.assessment.items()}
    return [DimensionRow(code=d.code, name=d.name, max=d.max, ledger=d.ledger, high=d.high,
                         step=units.get(d.code) if d.high > d.ledger else None,
                         self_score=d.self_score, assessed=d.assessed, proposed=_proposed(d))
            for d in form.dimensions]


def month_view(*, session: Session, member: Person, period: str, now: datetime,
               tz: ZoneInfo) -> tuple[MonthView, MemberMonth | None]:
    """A member's month as both the member and the secretary see it, and its row if opened."""
    form = self_evaluation_form(session=session, member=member, period=period, now=now, tz=tz)
    scheme = scheme_for(session=session, org=branch_of(session, member), period=period)
    month = find_month(session=session, person_id=member.id or 0, period=period)
    assert member.id is not None
    view = MonthView(
        person_id=member.id, name=member.name, period=period, period_label=period_label(period),
        state=form.state, state_label=form.state.label, opens_at=form.window.opens_at,
        deadline_at=form.window.deadline_at, last_day=form.window.last_day,
        self_open=now >= form.window.opens_at, late=form.late,
        self_late=bool(month and month.self_late),
        self_confirmed_at=month.self_confirmed_at if month else None,
        scoring=scheme.evaluation.scoring.value, dimensions=_dimensions(scheme, form),
        ledger_total=form.ledger_total, self_total=form.self_total, self_note=form.note,
        assessed_total=form.assessed_total, assessed_reason=form.assessed_reason,
        assessed_by=_name(session, month.assessed_by_id) if month else None,
        pending=[PendingItem(entry_id=e.id or 0,
                             indicator_name=indicator_name(session=session, entry=e),
                             points=e.points, reason=e.reason) for e in form.pending])
    return view, month


def _objection_view(session: Session, objection: Objection, *,
                    can_answer: bool = False) -> ObjectionView:
    assert objection.id is not None
    correction = (session.get(LedgerEntry, objection.correction_entry_id)
                  if objection.correction_entry_id else None)
    status = ObjectionStatus(objection.status)
    return ObjectionView(
        id=objection.id, code=f"Y{objection.id}", member_id=objection.raised_by_id,
        member_name=_name(session, objection.raised_by_id) or "", reason=objection.reason,
        raised_at=objection.raised_at, status=status, status_label=OBJECTION_LABELS[status],
        answer=objection.answer, answered_by=_name(session, objection.answered_by_id),
        answered_at=objection.answered_at,
        correction_points=correction.points if correction else None,
        can_answer=can_answer and status is ObjectionStatus.OPEN)


def _objections(session: Session, month_ids: list[int]) -> list[Objection]:
    return list(session.exec(
        select(Objection).where(col(Objection.member_month_id).in_(month_ids))
        .order_by(col(Objection.id))
    ))


def _branch_month(session: Session, branch_id: int, period: str) -> BranchMonth | None:
    return session.exec(select(BranchMonth).where(BranchMonth.branch_id == branch_id,
                                                  BranchMonth.period == period)).first()


def my_evaluation(*, session: Session, person: Person, period: str | None, now: datetime,
                  tz: ZoneInfo) -> MyEvaluation:
    """My month (default: the one under evaluation): the prefilled form with its limits, my
    score and result, my objections and declarations."""
    _require_party_member(person)
    branch = branch_of(session, person)
    period = month_or_default(period, session=session, org=branch, now=now, tz=tz)
    view, month = month_view(session=session, member=person, period=period, now=now, tz=tz)
    published = view.state in _PUBLISHED
    scheme = scheme_for(session=session, org=branch, period=period)
    # Confirming on time may earn an automatic indicator, recorded with the confirmation.
    on_time = scheme.evaluation.on_time if view.state is MonthState.open and not view.late else None
    branch_month = _branch_month(session, month.branch_id, period) if month else None
    deadline = branch_month.objection_deadline if branch_month else None
    result = None
    if published:
        result = live_scores(session=session, org=branch, person_ids=[view.person_id],
                             period=period)[view.person_id].total
    return MyEvaluation(
        **view.model_dump(),
        can_confirm=view.state is MonthState.open and view.self_open,
        on_time_points=scheme.indicator_by_code[on_time].points if on_time else None,
        published_at=month.published_at if month else None, result_total=result,
        objection_deadline=deadline,
        can_object=(view.state is MonthState.published and deadline is not None
                    and now < deadline),
        objections=[_objection_view(session, o)
                    for o in _objections(session, [month.id or 0] if month else [])],
        declarations=my_declarations(session=session, person=person, period=period),
        reviews_waiting=len(declarations_to_review(session=session, reviewer=person)))


def _progress(row: BranchProgress) -> BranchProgressOut:
    return BranchProgressOut(
        branch_id=row.branch_id, branch_name=row.branch_name, phase=row.phase.value,
        phase_label=row.phase.label,
        counts=BranchCounts(members=row.members, self_evaluated=row.self_evaluated,
                            late=row.late, scored=row.scored, published=row.published,
                            objections_open=row.objections_open),
        objection_deadline=row.objection_deadline)


def _branch(session: Session, branch_id: int) -> Organization:
    # Months are kept in the branch a member counts in: a branch, or a committee or general
    # branch with members of its own. Any other organisation has no month to act on.
    branch = session.get(Organization, branch_id)
    if branch is None or (branch.kind != OrgKind.branch
                          and not branch_members(session=session, branch=branch)):
        raise HTTPException(404, "找不到该党支部")
    return branch


def managed_branch(*, session: Session, person: Person,
                   branch_id: int) -> tuple[Organization, bool, bool]:
    """The branch asked for with whether the person is its secretary and on the committee."""
    branch = _branch(session, branch_id)
    secretary = is_branch_secretary(session=session, person=person, branch=branch)
    committee = is_committee_over(session=session, person=person, org=branch)
    if not (secretary or committee):
        raise HTTPException(403, NOT_MANAGER)
    return branch, secretary, committee


def branch_list(*, session: Session, person: Person, period: str | None, now: datetime,
                tz: ZoneInfo) -> BranchList:
    """Branches whose month the person scores (their own) or reviews (the committee's)."""
    period = month_or_default(period, session=session, org=branch_of(session, person), now=now,
                              tz=tz)
    held = session.exec(
        select(Organization).join(RoleAssignment,
                                  col(RoleAssignment.organization_id) == Organization.id)
        .where(RoleAssignment.person_id == person.id).distinct()
    ).all()
    rows: dict[int, BranchProgress] = {}
    for org in held:
        if (is_committee_over(session=session, person=person, org=org)
                or is_branch_secretary(session=session, person=person, branch=org)):
            rows.update((r.branch_id, r) for r in evaluation_status(session=session, org=org,
                                                                    period=period))
    items = sorted(rows.values(), key=lambda r: (r.branch_name, r.branch_id))
    return BranchList(period=period, period_label=period_label(period),
                      items=[_progress(r) for r in items if r.members])


def _row(session: Session, viewer: Person, branch: Organization, member: Person,
         view: MonthView) -> MemberRow:
    scorer = scorer_of(session=session, member=member, branch=branch)
    capacity = capacity_of(session=session, actor=viewer, member=member, branch=branch,
                           wanted=scorer)
    # Shown where the services would take it; they still decide (margins, caps, deadlines).
    may = (capacity is scorer and view.state in _SCORABLE
           and (view.state is not MonthState.open or view.late))
    return MemberRow(**view.model_dump(), is_branch_secretary=scorer is Capacity.committee,
                     can_score=may)


def branch_evaluation(*, session: Session, viewer: Person, branch_id: int,
                      period: str | None, now: datetime, tz: ZoneInfo) -> BranchEvaluation:
    """A branch's month (default: the one under evaluation): every member's self score,
    ledger, pending items and assessed score, and what the viewer may do."""
    branch, secretary, committee = managed_branch(session=session, person=viewer,
                                                  branch_id=branch_id)
    period = month_or_default(period, session=session, org=branch, now=now, tz=tz)
    scheme = scheme_for(session=session, org=branch, period=period)
    (progress,) = (r for r in evaluation_status(session=session, org=branch, period=period)
                   if r.branch_id == branch.id)
    rows, month_ids = [], []
    for member in branch_members(session=session, branch=branch):
        view, month = month_view(session=session, member=member, period=period, now=now, tz=tz)
        rows.append(_row(session, viewer, branch, member, view))
        if month is not None:
            month_ids.append(month.id or 0)
    branch_month = _branch_month(session, branch.id or 0, period)
    published = branch_month.published_at if branch_month else None
    closed = branch_month.closed_at if branch_month else None
    deadline = progress.objection_deadline
    return BranchEvaluation(
        **_progress(progress).model_dump(), period=period, period_label=period_label(period),
        published_at=published, closed_at=closed, scoring=scheme.evaluation.scoring.value,
        score_margin=scheme.evaluation.score_margin, is_secretary=secretary,
        is_committee=committee,
        can_accept=any(r.state is MonthState.self_evaluated and r.can_score for r in rows),
        can_publish=committee and published is None and progress.members > 0
        and progress.scored == progress.members,
        can_close=(committee and published is not None and closed is None
                   and deadline is not None and now >= deadline
                   and progress.objections_open == 0),
        # A veto indicator carries no points, so nothing can be corrected under it.
        correction_indicators=[IndicatorRef(code=i.code, name=i.name, points=i.points)
                               for i in scheme.indicators if i.points],
        # Secretary and committee answer; the services refuse anyone answering their own.
        objections=[_objection_view(session, o, can_answer=o.raised_by_id != viewer.id)
                    for o in _objections(session, month_ids)],
        rows=rows)


def _member_in(session: Session, branch: Organization, member_id: int) -> Person:
    member = session.get(Person, member_id)
    if member is None or branch_of(session, member).id != branch.id:
        raise HTTPException(404, "本支部没有该党员")
    return member


def _spot_item(session: Session, item: SpotCheckItem) -> SpotItemOut:
    entry = session.get(LedgerEntry, item.entry_id)
    assert entry is not None and item.id is not None
    return SpotItemOut(
        id=item.id, entry_id=item.entry_id, code=f"S{item.entry_id}",
        member_name=_name(session, entry.person_id) or "",
        indicator_name=indicator_name(session=session, entry=entry), points=entry.points,
        description=entry.reason, evidence=evidence_refs(entry.evidence), passed=item.passed,
        result_reason=item.reason, checked_at=item.checked_at,
        reversal_entry_id=item.reversal_entry_id)


def spot_check_view(*, session: Session, check: SpotCheck, message: str = "") -> SpotCheckOut:
    """A spot check with its items in draw order."""
    org = session.get(Organization, check.organization_id)
    assert org is not None and check.id is not None
    return SpotCheckOut(
        id=check.id, org_id=check.organization_id, org_name=org.name, period=check.period,
        seed=check.seed, size=check.size, percent=check.percent,
        population=len(check.population),
        items=[_spot_item(session, i) for i in spot_check_items(session=session, check=check)],
        message=message)


# ---- a member's month -----------------------------------------------------------------------

MINE = {400: {"model": Problem, "description": "月份格式不对，或该月没有生效的积分方案"},
        403: {"model": Problem, "description": "不是党员"},
        409: {"model": Problem, "description": "当前状态下不能这样操作"}}


@router.get("/me", response_model=MyEvaluation, responses=MINE)
def get_my_evaluation(person: ApiPerson, session: SessionDep, settings: SettingsDep,
                      period: str | None = None) -> MyEvaluation:
    """My month: prefilled self-evaluation with limits, score and reason, result, objections."""
    with answering():
        return my_evaluation(session=session, person=person, period=period, now=utcnow(),
                             tz=settings.tz)


def _month_answer(month: MemberMonth, total: Decimal | None, message: str) -> MonthAnswer:
    state = MonthState(month.state)
    return MonthAnswer(person_id=month.person_id, period=month.period, state=state,
                       state_label=state.label, total=total, message=message)


@router.post("/me/self", response_model=MonthAnswer, responses=MINE)
def post_self_evaluation(body: SelfIn, person: ApiPerson, engine: EngineDep,
                         settings: SettingsDep) -> MonthAnswer:
    """Confirm my self-evaluation: the ledger's score plus my adjustments, within the limits."""
    _require_party_member(person)
    period = _require_month(body.period)
    with writing(engine) as session:
        month = confirm_self_evaluation(session=session, member=person, period=period,
                                        adjustments=body.adjustments, note=body.note,
                                        now=utcnow(), tz=settings.tz)
        late = "（已逾期）" if month.self_late else ""
        return _month_answer(month, month.self_total,
                             f"已确认{period_label(period)}自评{late}，自评分 "
                             f"{points_text(month.self_total)} 分。")


@router.post("/me/objections", response_model=ObjectionRaised, status_code=201,
             responses=MINE)
def post_objection(body: ObjectionIn, person: ApiPerson, engine: EngineDep,
                   settings: SettingsDep) -> ObjectionRaised:
    """Object to my published month, within the objection window, with a reason."""
    _require_party_member(person)
    period = _require_month(body.period)
    with writing(engine) as session:
        objection = raise_objection(session=session, member=person, period=period,
                                    reason=body.reason, now=utcnow(), tz=settings.tz)
        return ObjectionRaised(
            **_objection_view(session, objection).model_dump(),
            message=f"已提出异议 Y{objection.id}，支部书记或党委答复后会私信通知您。")


# ---- a branch's month -----------------------------------------------------------------------

BRANCH = {400: {"model": Problem, "description": "内容有误，或当前不能这样操作"},
          403: {"model": Problem, "description": "不是本支部书记或党委，或不能给该人员评分"},
          404: {"model": Problem, "description": "找不到支部或党员"},
          409: {"model": Problem, "description": "已公示、已结账或已处理"}}


@router.get("/branches", response_model=BranchList)
def get_branches(person: ApiPerson, session: SessionDep, settings: SettingsDep,
                 period: str | None = None) -> BranchList:
    """The branches whose month I score or review, with their progress."""
    with answering():
        return branch_list(session=session, person=person, period=period, now=utcnow(),
                           tz=settings.tz)


@router.get("/branches/{branch_id}", response_model=BranchEvaluation, responses=BRANCH)
def get_branch_evaluation(branch_id: int, person: ApiPerson, session: SessionDep,
                          settings: SettingsDep, period: str | None = None) -> BranchEvaluation:
    """A branch's month: each member's self score, ledger, pending items, score and state."""
    with answering():
        return branch_evaluation(session=session, viewer=person, branch_id=branch_id,
                                 period=period, now=utcnow(), tz=settings.tz)


def _assessed(body: ScoreIn) -> Decimal | Mapping[str, Decimal]:
    if (body.scores is None) == (body.total is None):
        raise HTTPException(400, "请给出各维度的分数或本月总分（二选一）")
    return body.total if body.total is not None else body.scores or {}


@router.post("/branches/{branch_id}/members/{member_id}/score", response_model=MonthAnswer,
             responses=BRANCH)
def post_score(branch_id: int, member_id: int, body: ScoreIn, person: ApiPerson,
               engine: EngineDep, settings: SettingsDep) -> MonthAnswer:
    """Score a member's month (per dimension or in total); far from the self score needs why."""
    period = _require_month(body.period)
    assessed = _assessed(body)
    with writing(engine) as session:
        member = _member_in(session, _branch(session, branch_id), member_id)
        month = score_member(session=session, secretary=person, member_id=member_id,
                             period=period, assessed=assessed, reason=body.reason,
                             now=utcnow(), tz=settings.tz)
        return _month_answer(month, month.assessed_total,
                             f"已为{member.name}评分：{points_text(month.assessed_total)} 分。")


@router.post("/branches/{branch_id}/accept-self-scores", response_model=AcceptAnswer,
             responses=BRANCH)
def post_accept(branch_id: int, body: PeriodIn, person: ApiPerson,
                engine: EngineDep) -> AcceptAnswer:
    """一键采纳自评分: score every self-evaluated member I score as they scored themselves."""
    period = _require_month(body.period)
    with writing(engine) as session:
        outcome = accept_self_scores(session=session, secretary=person,
                                     branch=_branch(session, branch_id), period=period,
                                     now=utcnow())
        names = [_name(session, m.person_id) or "" for m in outcome.accepted]
        skipped = [Skipped(name=name, reason=reason) for name, reason in outcome.skipped]
        message = f"已采纳 {len(names)} 人的自评分。"
        if skipped:
            message += "未采纳：" + "；".join(f"{s.name}（{s.reason}）" for s in skipped) + "。"
        return AcceptAnswer(accepted=names, skipped=skipped, message=message)


@router.post("/branches/{branch_id}/publish", response_model=PublishAnswer, responses=BRANCH)
def post_publish(branch_id: int, body: PeriodIn, person: ApiPerson, engine: EngineDep,
                 settings: SettingsDep) -> PublishAnswer:
    """审定公示 (the committee): scores into the ledger, posts queued, objections open."""
    period = _require_month(body.period)
    with writing(engine) as session:
        branch = _branch(session, branch_id)
        done = publish_branch_month(
            session=session, committee_actor=person, branch=branch, period=period,
            now=utcnow(), tz=settings.tz,
            details_url=board_page_url(settings, branch_id, period))
        deadline = done.branch_month.objection_deadline
        assert done.branch_month.published_at is not None and deadline is not None
        return PublishAnswer(
            branch_id=branch_id, period=period, published_at=done.branch_month.published_at,
            objection_deadline=deadline, groups_queued=done.groups_queued,
            message=f"已审定公示{branch.name}{period_label(period)}月度评价，"
                    f"异议期至 {local_when(deadline, settings.tz)}。")


@router.post("/branches/{branch_id}/close", response_model=CloseAnswer, responses=BRANCH)
def post_close(branch_id: int, body: PeriodIn, person: ApiPerson, engine: EngineDep,
               settings: SettingsDep) -> CloseAnswer:
    """结账 (the committee): once the objection window has ended with nothing open."""
    period = _require_month(body.period)
    with writing(engine) as session:
        branch = _branch(session, branch_id)
        close_branch_month(session=session, actor=person, branch=branch, period=period,
                           now=utcnow(), tz=settings.tz)
        count = len(branch_members(session=session, branch=branch))
        return CloseAnswer(branch_id=branch_id, period=period, members=count,
                           message=f"{branch.name}{period_label(period)}已结账。")


@router.post("/objections/{objection_id}/answer", response_model=ObjectionView,
             responses=BRANCH)
def post_answer(objection_id: int, body: AnswerIn, person: ApiPerson,
                engine: EngineDep) -> ObjectionView:
    """Answer an objection (secretary or committee); upheld → a correcting ledger entry."""
    with writing(engine) as session:
        objection = answer_objection(
            session=session, actor=person, objection_id=objection_id, uphold=body.uphold,
            answer=body.answer, correction_points=body.correction_points,
            indicator_code=body.indicator_code, now=utcnow())
        return _objection_view(session, objection)


# ---- spot checks ----------------------------------------------------------------------------

SPOT = {400: {"model": Problem, "description": "数量、比例或种子有误，或没有可抽查的申报"},
        403: {"model": Problem, "description": "不是党委，或是本人的申报"},
        404: {"model": Problem, "description": "找不到组织、抽查或抽查项"},
        409: {"model": Problem, "description": "已登记结果"}}


@router.post("/spot-checks", response_model=SpotCheckOut, status_code=201, responses=SPOT)
def post_spot_check(body: SpotCheckIn, person: ApiPerson, engine: EngineDep) -> SpotCheckOut:
    """Draw a seeded, recorded random sample of a month's approved declarations (committee)."""
    period = _require_month(body.period)
    with writing(engine) as session:
        org = session.get(Organization, body.org_id)
        if org is None:
            raise HTTPException(404, "找不到该组织")
        check = draw_spot_check(session=session, committee_actor=person, org=org,
                                period=period, size=body.size, percent=body.percent,
                                seed=body.seed, now=utcnow())
        message = (f"已从 {len(check.population)} 条已通过的申报中抽取 {len(check.drawn)} 条"
                   f"（随机种子 {check.seed}）。")
        return spot_check_view(session=session, check=check, message=message)


@router.get("/spot-checks/{check_id}", response_model=SpotCheckOut, responses=SPOT)
def get_spot_check(check_id: int, person: ApiPerson, session: SessionDep) -> SpotCheckOut:
    """A spot check's draw and its items with their outcomes (committee)."""
    check = session.get(SpotCheck, check_id)
    org = session.get(Organization, check.organization_id) if check else None
    if check is None or org is None:
        raise HTTPException(404, f"找不到抽查 #{check_id}")
    if not is_committee_over(session=session, person=person, org=org):
        raise HTTPException(403, "只有党委可以查看抽查")
    with answering():
        return spot_check_view(session=session, check=check)


@router.post("/spot-checks/items/{item_id}", response_model=SpotItemOut, responses=SPOT)
def post_spot_result(item_id: int, body: SpotResultIn, person: ApiPerson, engine: EngineDep,
                     settings: SettingsDep) -> SpotItemOut:
    """Record a re-review: passed, or failed with a reason (the entry is reversed)."""
    with writing(engine) as session:
        item = record_spot_check_result(session=session, actor=person, item_id=item_id,
                                        passed=body.passed, reason=body.reason, now=utcnow(),
                                        tz=settings.tz)
        return _spot_item(session, item)
