"""Mini-app JSON API: who I am, my points, my ledger, and branch boards as the scheme allows.

The functions that build these answers (`me_view`, `my_points`, `my_ledger`, `board_view`) are
also what the H5 pages render, so a page and the API always show the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, PlainSerializer
from sqlmodel import Session

from app.config import Settings
from app.db import utcnow
from app.deps import SessionDep, SettingsDep
from app.domain.periods import FIRST_YEAR, LAST_YEAR, month_key, previous_month, quarter_key
from app.domain.scheme import RankingMode, Scheme, Source
from app.domain.scoring import BoardRow as VisibleRow
from app.domain.scoring import DimensionLine, MonthScore, competition_rank, visible_board
from app.domain.vocab import MemberType, OrgKind, Role
from app.models import EntrySource, EntryStatus, Organization, Person
from app.services import orgs, schemes
from app.services.access import all_roles, can_manage_branch, secretary_branches
from app.services.ledger import pending_for_person
from app.services.reports import (
    BoardRow,
    ReportError,
    YearBoard,
    branch_board,
    branch_of,
    branch_year,
    first_eligible_month,
    member_entries,
    member_standing,
    months_in_order,
    reversals_of,
)
from miniapp_api.deps import ApiPerson
from miniapp_api.templating import period_label

router = APIRouter(prefix="/api/v1", tags=["我的积分"])

ZERO = Decimal(0)
CENT = Decimal("0.01")
TREND_MONTHS = 12
PERIOD_HINT = "可以写：本月、上月、本季度、本年，或 2026-10、2026-Q4、2026 这样的月份、季度或年份。"
_PERIOD_KEY = re.compile(r"^(?P<year>\d{4})(?:-(?P<month>\d{2})|-Q(?P<quarter>[1-4]))?$")

# JSON clients get numbers; Python (and the templates) keep exact Decimals.
Points = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

STATUS_LABELS = {
    "approved": "有效",
    "pending": "待审核",
    "rejected": "已驳回",
    "reversed": "已冲销",
}


class Refused(Exception):
    """A view cannot be given to this person; `detail` is for the user, in Chinese."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Problem(BaseModel):
    """Why a request was refused, in Chinese."""

    detail: str = Field(examples=["看不懂“下下月”。" + PERIOD_HINT])


# --- periods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A month, quarter or year, and the months of it counted so far (oldest first)."""

    key: str
    kind: Literal["month", "quarter", "year"]
    year: int
    months: tuple[str, ...]

    @property
    def through(self) -> str:
        """The last month counted: the period's last month, or this month while it runs."""
        return self.months[-1]


def this_month(settings: Settings) -> str:
    """The current month in the business time zone, e.g. `2026-11`."""
    return month_key(utcnow(), settings.tz)


def resolve_period(raw: str | None, *, today: str) -> Period:
    """The period asked for: 本月 (default), 上月, 本季度, 本年, `2026-10`, `2026-Q4`, `2026`."""
    text = (raw or "").strip() or "本月"
    words = {
        "本月": today,
        "上月": previous_month(today),
        "本季度": quarter_key(today),
        "本季": quarter_key(today),
        "本年": today[:4],
        "今年": today[:4],
    }
    key = words.get(text, text.upper())
    match = _PERIOD_KEY.match(key)
    if (match is None or (match["month"] and not 1 <= int(match["month"]) <= 12)
            or not FIRST_YEAR <= int(match["year"]) <= LAST_YEAR):
        raise Refused(400, f"看不懂“{text[:20]}”。{PERIOD_HINT}")
    year = int(match["year"])
    # Keys are rebuilt from the numbers: \d also matches full-width digits typed on a phone.
    if match["month"]:
        kind: Literal["month", "quarter", "year"] = "month"
        numbers = [int(match["month"])]
        key = f"{year:04d}-{numbers[0]:02d}"
    elif match["quarter"]:
        kind = "quarter"
        first = (int(match["quarter"]) - 1) * 3 + 1
        numbers = [first, first + 1, first + 2]
        key = f"{year:04d}-Q{match['quarter']}"
    else:
        kind = "year"
        numbers = list(range(1, 13))
        key = f"{year:04d}"
    months = tuple(m for m in (f"{year:04d}-{n:02d}" for n in numbers) if m <= today)
    if not months:
        raise Refused(400, f"{period_label(key)}还没有开始，没有积分可看")
    return Period(key, kind, year, months)


# --- response models ---------------------------------------------------------------------------


class OrgRef(BaseModel):
    """An organisation with its full path from the committee down."""

    id: int = Field(examples=[4])
    name: str = Field(examples=["生产第一党支部"])
    path: str = Field(examples=["示范集团党委/生产第一党支部"])
    kind_label: str = Field(examples=["党支部"])


class MeOut(BaseModel):
    """The logged-in person: organisation, branch, member type and roles."""

    id: int = Field(examples=[7])
    name: str = Field(examples=["张三"])
    organization: OrgRef
    branch: OrgRef
    member_type: str = Field(examples=["full"])
    member_type_label: str = Field(examples=["正式党员"])
    roles: list[str] = Field(examples=[["党员", "支部书记"]])
    is_secretary: bool = Field(examples=[True])


class PeriodInfo(BaseModel):
    """The period shown: its key, kind and Chinese label, and the last month counted."""

    key: str = Field(examples=["2026-11"])
    kind: Literal["month", "quarter", "year"] = Field(examples=["month"])
    label: str = Field(examples=["2026年11月"])
    through: str = Field(
        description="最后计入的月份（本季度、本年为截至本月）", examples=["2026-11"]
    )
    closed: bool | None = Field(description="该月是否已结账；季度、年度为 null", examples=[False])


class DimensionScore(BaseModel):
    """One dimension of the base score (月均 for a quarter or year)."""

    code: str = Field(examples=["political"])
    name: str = Field(examples=["政治合格"])
    score: Points = Field(examples=[18.5])
    max: Points = Field(examples=[25])


class TrendPoint(BaseModel):
    """One month's total; null for no scheme in force, before joining, or a vetoed month."""

    period: str = Field(examples=["2026-10"])
    total: Points | None = Field(examples=[86.5])


class MyPoints(BaseModel):
    """A member's points for a period, the breakdown, the rank as allowed, and the trend."""

    person_id: int = Field(examples=[7])
    name: str = Field(examples=["张三"])
    branch_id: int = Field(examples=[4])
    branch_name: str = Field(examples=["生产第一党支部"])
    period: PeriodInfo
    total: Points | None = Field(description="合计；一票否决且不计分时为 null", examples=[93.5])
    base: Points = Field(examples=[88.5])
    base_label: str = Field(
        description="月份为“基础分”，季度、年度为“月均基础分”", examples=["基础分"]
    )
    bonus: Points = Field(examples=[5])
    vetoed: bool = Field(examples=[False])
    dimensions: list[DimensionScore]
    rank: int | None = Field(
        description="支部排名（排名方式允许时）；无排名时为 null", examples=[3]
    )
    branch_size: int = Field(examples=[12])
    ranking_mode: str = Field(examples=["top_n"])
    ranking_mode_label: str = Field(examples=["仅显示前N名"])
    pending: int = Field(description="待审核的积分记录条数", examples=[1])
    pending_points: Points = Field(examples=[2])
    grade: str | None = Field(description="年度等级（仅年度）", examples=[None])
    notes: list[str] = Field(examples=[["民主评议分尚未录入，暂按月均基础分计算"]])
    trend: list[TrendPoint] = Field(description="截至本期最后一个月的近 12 个月合计")


class LedgerItem(BaseModel):
    """One ledger entry as the member reads it."""

    id: int = Field(examples=[42])
    period: str = Field(examples=["2026-11"])
    occurred_on: date = Field(examples=["2026-11-05"])
    indicator_code: str = Field(examples=["online_study"])
    indicator_name: str = Field(examples=["完成线上学习"])
    count: int = Field(examples=[2])
    points: Points = Field(examples=[2])
    reason: str = Field(examples=["完成线上学习两次"])
    created_by_label: str = Field(examples=["李书记"])
    source: str = Field(examples=["automatic"])
    source_label: str = Field(examples=["系统自动"])
    status: Literal["approved", "pending", "rejected", "reversed"] = Field(examples=["approved"])
    status_label: str = Field(examples=["有效"])
    review_reason: str | None = Field(examples=[None])
    reversal_of: int | None = Field(description="本条冲销的原记录编号", examples=[None])
    reversed_by: int | None = Field(description="冲销本条的记录编号", examples=[None])


class MyLedger(BaseModel):
    """A member's ledger entries for a period, oldest first."""

    person_id: int = Field(examples=[7])
    name: str = Field(examples=["张三"])
    period: PeriodInfo
    entries: list[LedgerItem]


class BoardLine(BaseModel):
    """A member's line on a board."""

    person_id: int = Field(examples=[7])
    name: str = Field(examples=["张三"])
    rank: int | None = Field(examples=[1])
    base: Points = Field(examples=[90])
    bonus: Points = Field(examples=[5])
    total: Points | None = Field(examples=[95])
    vetoed: bool = Field(examples=[False])
    is_me: bool = Field(examples=[False])


class BoardView(BaseModel):
    """A branch board cut to what the scheme's ranking mode lets the asker see."""

    branch_id: int = Field(examples=[4])
    branch_name: str = Field(examples=["生产第一党支部"])
    branch_path: str = Field(examples=["示范集团党委/生产第一党支部"])
    period: PeriodInfo
    ranking_mode: str = Field(examples=["top_n"])
    ranking_mode_label: str = Field(examples=["仅显示前N名"])
    top_n: int | None = Field(examples=[10])
    rows: list[BoardLine]
    own: BoardLine | None = Field(description="提问者本人的一行（不在本支部时为 null）")
    own_in_rows: bool = Field(description="本人的一行是否已在公布的名单中", examples=[False])
    members: int | None = Field(description="参与人数（排名方式允许时）", examples=[None])
    average: Points | None = Field(description="支部平均分（排名方式允许时）", examples=[None])
    notice: str | None = Field(examples=["本支部只公布前 10 名。"])


# --- view builders (shared with the H5 pages) --------------------------------------------------


def _org_ref(session: Session, org: Organization) -> OrgRef:
    return OrgRef(
        id=org.id or 0,
        name=org.name,
        path=orgs.display_path(session, org),
        kind_label=OrgKind(org.kind).label,
    )


def me_view(*, session: Session, person: Person) -> MeOut:
    """Who the person is: organisation, branch, member type and roles."""
    home = session.get(Organization, person.organization_id)
    assert home is not None
    held = all_roles(session=session, person=person)
    member_type = MemberType(person.member_type)
    return MeOut(
        id=person.id or 0,
        name=person.name,
        organization=_org_ref(session, home),
        branch=_org_ref(session, branch_of(session, person)),
        member_type=member_type.value,
        member_type_label=member_type.label,
        roles=[r.label for r in Role if r in held],
        is_secretary=bool(secretary_branches(session=session, person=person)),
    )


def _ensure_member(person: Person) -> None:
    if person.member_type == MemberType.masses:
        raise Refused(403, "您不是党员，不参加党员积分")


def _scheme_at(session: Session, org: Organization, month: str) -> Scheme:
    version = schemes.version_for(session=session, org=org, period=month)
    if version is None:
        raise Refused(404, f"{period_label(month)}还没有生效的积分方案，请联系党委管理员")
    return schemes.scheme_of(version)


def _period_info(period: Period, closed: bool | None) -> PeriodInfo:
    return PeriodInfo(
        key=period.key,
        kind=period.kind,
        label=period_label(period.key),
        through=period.through,
        closed=closed,
    )


def _year_board(session: Session, branch: Organization, period: Period) -> YearBoard:
    try:
        return branch_year(
            session=session, branch=branch, year=period.year, through=int(period.through[5:])
        )
    except ReportError as exc:
        raise Refused(404, str(exc)) from None


def _summary_rows(board: YearBoard, period: Period) -> list[BoardRow]:
    """A quarter's or year's board in the shape of a month's, from the branch's year so far."""
    if period.kind == "year":
        rows = [
            BoardRow(
                r.person_id,
                r.name,
                r.year.average_base if r.year else ZERO,
                r.year.bonus if r.year else ZERO,
                r.year.score if r.year else None,
                bool(r.year and r.year.vetoed),
                r.rank,
            )
            for r in board.rows
        ]
    else:
        summaries = {r.person_id: r.quarters.get(period.key) for r in board.rows}
        ranks = competition_rank({pid: s.total if s else None for pid, s in summaries.items()})
        rows = []
        for r in board.rows:
            s = summaries[r.person_id]
            rows.append(
                BoardRow(
                    r.person_id,
                    r.name,
                    s.average_base if s else ZERO,
                    s.bonus if s else ZERO,
                    s.total if s else None,
                    bool(s and s.vetoed_months),
                    ranks[r.person_id],
                )
            )
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.person_id))
    return rows


def _dimensions(lines: tuple[DimensionLine, ...]) -> list[DimensionScore]:
    return [DimensionScore(code=d.code, name=d.name, score=d.score, max=d.max) for d in lines]


def _average_dimensions(months: list[MonthScore], denominator: int) -> list[DimensionScore]:
    """Each dimension's monthly average over a quarter or year."""
    # On the base average's terms (same denominator, a vetoed month counts 0), so they add up.
    if not months or denominator < 1:
        return []
    sums: dict[str, Decimal] = {}
    latest: dict[str, DimensionLine] = {}
    for month in months:
        for d in month.dimensions:
            sums[d.code] = sums.get(d.code, ZERO) + (ZERO if month.vetoed else d.score)
            latest[d.code] = d
    return [
        DimensionScore(
            code=code,
            name=latest[code].name,
            max=latest[code].max,
            score=(total / denominator).quantize(CENT, rounding=ROUND_HALF_UP),
        )
        for code, total in sums.items()
    ]


def _trend(session: Session, person: Person, branch: Organization, end: str) -> list[TrendPoint]:
    """The 12 months up to `end`: totals scored as month close scores them, gaps as null."""
    keys = [end]
    while len(keys) < TREND_MONTHS:
        keys.insert(0, previous_month(keys[0]))
    pid = person.id or 0
    scored: dict[str, MonthScore] = {}
    for year in sorted({int(k[:4]) for k in keys}):
        last = max(int(k[5:]) for k in keys if int(k[:4]) == year)
        months = months_in_order(
            session=session, org=branch, person_ids=[pid], year=year, last=last
        )
        scored.update(months[pid])
    points = []
    for key in keys:
        start = first_eligible_month(person, int(key[:4]))
        eligible = start is not None and int(key[5:]) >= start
        score = scored.get(key)
        points.append(TrendPoint(period=key, total=score.total if score and eligible else None))
    return points


def _own_rank(
    scheme: Scheme, person: Person, total: Decimal | None, rank: int | None
) -> int | None:
    """The asker's rank as the ranking mode lets them see it (the domain rule decides)."""
    row = VisibleRow(person.id, person.name, total, rank)
    cut = visible_board(
        mode=scheme.ranking.mode, rows=[row], viewer_key=person.id, n=scheme.ranking.n
    )
    return cut.own.rank if cut.own else None


def _veto_note(total: Decimal | None) -> str:
    return "本期有一票否决事项，" + ("不计积分" if total is None else "积分计为 0")


def my_points(*, session: Session, person: Person, period: Period) -> MyPoints:
    """The member's points for a period, as /我的积分 reports them, with the 12-month trend."""
    _ensure_member(person)
    branch = branch_of(session, person)
    notes: list[str] = []
    grade: str | None = None
    if period.kind == "month":
        try:
            standing = member_standing(session=session, person=person, period=period.key)
        except ReportError as exc:
            raise Refused(404, str(exc)) from None
        scheme, closed = standing.scheme, standing.closed
        total, base, bonus = standing.total, standing.score.base, standing.score.bonus
        vetoed, rank, size = standing.score.vetoed, standing.rank_in_branch, standing.branch_size
        dimensions = _dimensions(standing.score.dimensions)
    else:
        scheme, closed = _scheme_at(session, branch, period.through), None
        board = _year_board(session, branch, period)
        year_row = next((r for r in board.rows if r.person_id == person.id), None)
        row = next((r for r in _summary_rows(board, period) if r.person_id == person.id), None)
        if year_row is None or row is None:
            raise Refused(404, "您不在本支部的计分名单中，请联系支部书记")
        total, base, bonus, vetoed, rank = row.total, row.base, row.bonus, row.vetoed, row.rank
        size = len(board.rows)
        months = [m for k, m in year_row.months.items() if k in period.months]
        if period.kind == "year":
            grade = year_row.grade
            denominator = year_row.year.eligible_months if year_row.year else 0
            if year_row.year is None:
                notes.append("该年度不在计分范围内（入党时间晚于统计期）")
            elif year_row.year.review_missing:
                notes.append("民主评议分尚未录入，暂按月均基础分计算")
        else:
            summary = year_row.quarters.get(period.key)
            denominator = summary.months if summary else 0
            if summary is None:
                notes.append("该季度没有计分月份")
        dimensions = _average_dimensions(months, denominator)
    if vetoed:
        notes.insert(0, _veto_note(total))
    pending = [
        e
        for m in period.months
        for e in pending_for_person(session=session, person_id=person.id or 0, period=m)
    ]
    return MyPoints(
        person_id=person.id or 0,
        name=person.name,
        branch_id=branch.id or 0,
        branch_name=branch.name,
        period=_period_info(period, closed),
        total=total,
        base=base,
        base_label="基础分" if period.kind == "month" else "月均基础分",
        bonus=bonus,
        vetoed=vetoed,
        dimensions=dimensions,
        rank=_own_rank(scheme, person, total, rank),
        branch_size=size,
        ranking_mode=scheme.ranking.mode.value,
        ranking_mode_label=scheme.ranking.mode.label,
        pending=len(pending),
        pending_points=sum((e.points for e in pending), ZERO),
        grade=grade,
        notes=notes,
        trend=_trend(session, person, branch, period.through),
    )


def _source_label(source: str, reversal_of: int | None) -> str:
    if source == EntrySource.ADJUSTMENT:
        return "冲销更正" if reversal_of is not None else "更正调整"
    try:
        return Source(source).label
    except ValueError:
        return source


def my_ledger(*, session: Session, person: Person, period: Period) -> MyLedger:
    """The member's ledger entries for a period: what, when, why, who recorded it, and status."""
    _ensure_member(person)
    lines = member_entries(session=session, person=person, periods=list(period.months))
    reversed_by = reversals_of(session=session, entry_ids=[e.id for e in lines])
    entries = []
    for e in lines:
        status = e.status
        if status == EntryStatus.APPROVED and e.id in reversed_by:
            status = "reversed"
        entries.append(
            LedgerItem(
                id=e.id,
                period=e.period,
                occurred_on=e.occurred_on,
                indicator_code=e.indicator_code,
                indicator_name=e.indicator_name,
                count=e.count,
                points=e.points,
                reason=e.reason,
                created_by_label=e.created_by,
                source=e.source,
                source_label=_source_label(e.source, e.reversal_of),
                status=status,
                status_label=STATUS_LABELS[status],
                review_reason=e.review_reason or None,
                reversal_of=e.reversal_of,
                reversed_by=reversed_by.get(e.id),
            )
        )
    return MyLedger(
        person_id=person.id or 0,
        name=person.name,
        period=_period_info(period, None),
        entries=entries,
    )


def board_branch(*, session: Session, person: Person, branch_id: int) -> Organization:
    """The branch asked for, if the person may see its board: their own, or one they manage."""
    branch = session.get(Organization, branch_id)
    if branch is None or branch.kind != OrgKind.branch:
        raise Refused(404, "找不到该党支部")
    if can_manage_branch(session=session, person=person, branch=branch):
        return branch
    if branch_of(session, person).id != branch.id:
        raise Refused(403, "您只能查看本支部的积分榜")
    _ensure_member(person)
    return branch


def _ranking_notice(mode: RankingMode, n: int | None) -> str | None:
    if mode is RankingMode.off:
        return "本支部未开启排名公示，只显示您本人的积分。"
    if mode is RankingMode.aggregates:
        return "本支部只公布参与人数和平均分。"
    if mode is RankingMode.top_n:
        return f"本支部只公布前 {n} 名。"
    return None


def board_view(
    *, session: Session, viewer: Person, branch: Organization, period: Period
) -> BoardView:
    """A branch's board for a period, cut by the scheme's ranking mode, the asker's row marked."""
    scheme = _scheme_at(session, branch, period.through)
    closed: bool | None = None
    if period.kind == "month":
        try:
            full = branch_board(session=session, branch=branch, period=period.key)
        except ReportError as exc:
            raise Refused(404, str(exc)) from None
        rows, closed = full.rows, full.closed
    else:
        rows = _summary_rows(_year_board(session, branch, period), period)
    mode, n = scheme.ranking.mode, scheme.ranking.n
    cut = visible_board(
        mode=mode,
        rows=[VisibleRow(r.person_id, r.name, r.total, r.rank) for r in rows],
        viewer_key=viewer.id,
        n=n,
    )
    by_id: dict[Hashable, BoardRow] = {r.person_id: r for r in rows}

    def line(r: BoardRow) -> BoardLine:
        return BoardLine(
            person_id=r.person_id,
            name=r.name,
            rank=r.rank,
            base=r.base,
            bonus=r.bonus,
            total=r.total,
            vetoed=r.vetoed,
            is_me=r.person_id == viewer.id,
        )

    shown = [line(by_id[v.key]) for v in cut.rows]
    own = line(by_id[cut.own.key]) if cut.own else None
    return BoardView(
        branch_id=branch.id or 0,
        branch_name=branch.name,
        branch_path=orgs.display_path(session, branch),
        period=_period_info(period, closed),
        ranking_mode=mode.value,
        ranking_mode_label=mode.label,
        top_n=n if mode is RankingMode.top_n else None,
        rows=shown,
        own=own,
        own_in_rows=any(r.is_me for r in shown),
        members=cut.members,
        average=cut.average,
        notice=_ranking_notice(mode, n),
    )


# --- endpoints ---------------------------------------------------------------------------------

PeriodQuery = Annotated[
    str | None,
    Query(
        description="本月（默认）、上月、本季度、本年，或 2026-10、2026-Q4、2026",
        examples=["2026-11"],
    ),
]
REFUSALS: dict[int | str, dict[str, object]] = {
    400: {"model": Problem, "description": "看不懂的期间，或期间尚未开始"},
    401: {"model": Problem, "description": "未登录"},
    403: {"model": Problem, "description": "无权查看"},
    404: {"model": Problem, "description": "该期间没有生效的积分方案，或支部不存在"},
}


def _http(exc: Refused) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


@router.get("/me", response_model=MeOut, responses={401: REFUSALS[401]})
def get_me(person: ApiPerson, session: SessionDep) -> MeOut:
    """The logged-in person: name, organisation, branch, member type and roles."""
    return me_view(session=session, person=person)


@router.get("/me/points", response_model=MyPoints, responses=REFUSALS)
def get_my_points(
    person: ApiPerson, session: SessionDep, settings: SettingsDep, period: PeriodQuery = None
) -> MyPoints:
    """My points for a month, quarter or year: breakdown, rank as allowed, pending, trend."""
    try:
        return my_points(
            session=session,
            person=person,
            period=resolve_period(period, today=this_month(settings)),
        )
    except Refused as exc:
        raise _http(exc) from None


@router.get("/me/ledger", response_model=MyLedger, responses=REFUSALS)
def get_my_ledger(
    person: ApiPerson, session: SessionDep, settings: SettingsDep, period: PeriodQuery = None
) -> MyLedger:
    """My ledger entries for a period, with the reason and who recorded each one."""
    try:
        return my_ledger(
            session=session,
            person=person,
            period=resolve_period(period, today=this_month(settings)),
        )
    except Refused as exc:
        raise _http(exc) from None


@router.get("/boards/branch/{branch_id}", response_model=BoardView, responses=REFUSALS)
def get_branch_board(
    branch_id: int,
    person: ApiPerson,
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery = None,
) -> BoardView:
    """A branch board as the scheme's ranking mode allows: one's own branch, or one managed."""
    try:
        branch = board_branch(session=session, person=person, branch_id=branch_id)
        return board_view(
            session=session,
            viewer=person,
            branch=branch,
            period=resolve_period(period, today=this_month(settings)),
        )
    except Refused as exc:
        raise _http(exc) from None
