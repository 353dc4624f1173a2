"""Activities, leave and approvals: the mini-app JSON API, and the views the H5 pages share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session, col, select

from app.db import utcnow, write_session
from app.deps import EngineDep, SessionDep, SettingsDep
from app.domain.checkin import Outcome
from app.domain.refusals import Refusal
from app.models import (
    Activity,
    ActivityStatus,
    CheckIn,
    CheckInMethod,
    LeaveKind,
    LeaveRequest,
    LeaveStatus,
    Organization,
    Person,
)
from app.services.access import can_manage_branch, secretary_branches
from app.services.activities import (
    ACTIVITY_KINDS,
    LEAVE_KINDS,
    ActivityDefaults,
    ActivityError,
    Geofence,
    activities_for,
    cancel_activity,
    close_checkin,
    create_activity,
    decide_leave,
    expected_attendees,
    is_expected,
    managed_activity,
    pending_leaves,
    request_leave,
    set_expected,
    status_at,
    visible_activity,
)
from app.services.attendance import attendance_of, finalize
from app.services.checkin import check_ins, mark_present
from app.services.ledger import LedgerError
from app.services.notices import queue_leave_decided, queue_leave_requested
from miniapp_api.deps import ApiPerson
from miniapp_api.refusals import http_error

router = APIRouter(prefix="/api/v1", tags=["活动与请假"])

ActivityScope = Literal["upcoming", "past"]
LeaveScope = Literal["mine", "pending"]
# Enough for a phone screen; each row costs a query or two (see _presence).
UPCOMING_LIMIT = 50
PAST_LIMIT = 30
NOT_SECRETARY = "只有支部书记可以审批请假申请"


class Problem(BaseModel):
    """A refused request: the reason, in Chinese, for the person who asked."""

    detail: str = Field(examples=["只有该支部的书记或上级党组织的工作人员可以管理这个活动"])


# ---- response models ------------------------------------------------------------------------


class LeaveState(BaseModel):
    """A leave request as its owner sees it next to the activity."""

    id: int = Field(examples=[12])
    code: str = Field(description="聊天中使用的编号", examples=["Q12"])
    kind: str = Field(examples=["事假"])
    reason: str = Field(examples=["出差在外"])
    status: LeaveStatus = Field(examples=["pending"])
    status_label: str = Field(examples=["待审批"])
    decision_reason: str = Field(examples=[""])
    decided_at: datetime | None = None


class LeaveItem(LeaveState):
    """A leave request with its activity and the member who asked, for lists and approvals."""

    activity_id: int = Field(examples=[7])
    activity_kind: str = Field(examples=["主题党日"])
    activity_title: str = Field(examples=["十一月主题党日"])
    activity_starts_at: datetime
    person_id: int = Field(examples=[5])
    person_name: str = Field(examples=["李四"])
    created_at: datetime


class MyCheckIn(BaseModel):
    """When the person checked in, and how."""

    checked_in_at: datetime
    late: bool = Field(examples=[False])
    manual: bool = Field(description="由书记补登", examples=[False])


class ActivitySummary(BaseModel):
    """An activity with its state at the time asked and the asker's own status."""

    id: int = Field(examples=[7])
    kind: str = Field(examples=["主题党日"])
    title: str = Field(examples=["十一月主题党日"])
    starts_at: datetime
    ends_at: datetime
    place: str = Field(examples=["党员活动室"])
    status: ActivityStatus = Field(examples=["planned"])
    status_label: str = Field(examples=["未开始"])
    leave_deadline_at: datetime
    my_leave: LeaveState | None = None
    my_checkin: MyCheckIn | None = None
    my_outcome: Outcome | None = Field(default=None, examples=["present"])
    my_status: str = Field(description="我的状态，一句话", examples=["请假待审批"])
    can_request_leave: bool = Field(examples=[True])


class ActivityList(BaseModel):
    """The asker's activities: upcoming and open (soonest first) or past (latest first)."""

    scope: ActivityScope = Field(examples=["upcoming"])
    can_create: bool = Field(description="能否为本支部发起活动", examples=[False])
    items: list[ActivitySummary]


class AttendeeRow(BaseModel):
    """One line of the attendance table a manager sees."""

    person_id: int = Field(examples=[5])
    name: str = Field(examples=["李四"])
    expected: bool = Field(description="应到人员；false 为列席", examples=[True])
    checked_in_at: datetime | None = None
    late: bool = Field(examples=[False])
    manual: bool = Field(description="由书记补登", examples=[False])
    leave: LeaveState | None = None
    outcome: Outcome | None = Field(default=None, examples=["absent"])
    outcome_label: str | None = Field(default=None, examples=["缺席"])
    can_mark_present: bool = Field(examples=[True])


class AttendanceCounts(BaseModel):
    """Counts over the attendance table, kept in step with its rows."""

    expected: int = Field(examples=[12])
    checked_in: int = Field(description="应到人员中已签到", examples=[9])
    late: int = Field(examples=[1])
    visitors: int = Field(examples=[0])
    approved_leave: int = Field(examples=[1])
    pending_leave: int = Field(examples=[1])
    missing: int = Field(description="应到未到且无已批准的请假", examples=[2])


class AttendanceSheet(BaseModel):
    """Who is expected, who came, who asked for leave; outcomes once attendance is final."""

    final: bool = Field(examples=[False])
    counts: AttendanceCounts
    outcomes: dict[Outcome, int] | None = Field(
        default=None, examples=[{"present": 8, "late": 1, "excused": 1, "absent": 2}])
    rows: list[AttendeeRow]


class ActivityDetail(BaseModel):
    """An activity, the asker's status, and for its managers the attendance and their actions."""

    activity: ActivitySummary
    organization_name: str = Field(examples=["生产第一党支部"])
    checkin_opens_at: datetime
    checkin_closes_at: datetime
    late_after_min: int = Field(examples=[10])
    allow_visitors: bool = Field(examples=[False])
    has_geofence: bool = Field(examples=[False])
    is_expected: bool = Field(description="我是否在应到名单中", examples=[True])
    is_manager: bool = Field(examples=[False])
    can_close: bool = Field(examples=[False])
    can_finalize: bool = Field(examples=[False])
    can_cancel: bool = Field(examples=[False])
    attendance: AttendanceSheet | None = Field(default=None, description="仅书记和上级党组织可见")


class ActionAnswer(BaseModel):
    """An activity after a manager's action."""

    activity_id: int = Field(examples=[7])
    status: ActivityStatus = Field(examples=["closed"])
    status_label: str = Field(examples=["已结束"])
    message: str = Field(examples=["已结束签到。"])


class FinalAnswer(BaseModel):
    """What making attendance final did; `changed` is false when it had been final before."""

    activity_id: int = Field(examples=[7])
    changed: bool = Field(examples=[True])
    counts: dict[Outcome, int] = Field(
        examples=[{"present": 8, "late": 1, "excused": 1, "absent": 2}])
    entries_written: int = Field(description="本次写入的积分记录条数", examples=[12])
    notified: int = Field(description="本次通知被扣分的人数", examples=[2])
    message: str = Field(examples=["考勤已确认：出席 8 人、迟到 1 人、请假 1 人、缺席 2 人，"
                                   "记入积分 12 条。"])


class MarkedAnswer(BaseModel):
    """A check-in recorded by hand; `created` is false when the person had already checked in."""

    activity_id: int = Field(examples=[7])
    person_id: int = Field(examples=[5])
    name: str = Field(examples=["李四"])
    created: bool = Field(examples=[True])
    checked_in_at: datetime
    message: str = Field(examples=["已为李四补登签到。"])


class ExpectedAnswer(BaseModel):
    """Whether a person is now among the expected attendees."""

    activity_id: int = Field(examples=[7])
    person_id: int = Field(examples=[5])
    expected: bool = Field(examples=[True])
    message: str = Field(examples=["已将李四加入应到人员。"])


class LeaveList(BaseModel):
    """The asker's own leave requests, or those waiting for this secretary."""

    scope: LeaveScope = Field(examples=["pending"])
    items: list[LeaveItem]


class LeaveCreated(LeaveItem):
    """A new leave request and how many secretaries the card reached."""

    notified: int = Field(description="收到审批卡片的书记人数", examples=[1])
    message: str = Field(examples=["已提交请假申请 Q12，等待支部书记审批，结果会私信通知您。"])


class LeaveDecided(LeaveItem):
    """A decided leave request; `changed` is false when it had been decided so before."""

    changed: bool = Field(examples=[True])
    message: str = Field(examples=["已批准请假申请 Q12。"])


# ---- request bodies -------------------------------------------------------------------------


class GeofenceIn(BaseModel):
    """Where members must be to check in."""

    lat: float = Field(examples=[39.9087])
    lng: float = Field(examples=[116.3975])
    radius_m: int = Field(le=100_000, examples=[300])


class ActivityIn(BaseModel):
    """A new activity. Times without a zone are read in the business time zone (北京时间)."""

    kind: str = Field(json_schema_extra={"enum": list(ACTIVITY_KINDS)}, examples=["主题党日"])
    title: str = Field(default="", max_length=200, examples=["十一月主题党日"])
    starts_at: datetime = Field(examples=["2026-11-28T14:30:00+08:00"])
    ends_at: datetime | None = Field(default=None, examples=["2026-11-28T16:30:00+08:00"])
    place: str = Field(default="", max_length=200, examples=["党员活动室"])
    branch_ids: list[int] | None = Field(default=None, max_length=50,
                                         description="默认为发起人所在支部", examples=[[3]])
    checkin_opens_at: datetime | None = None
    checkin_closes_at: datetime | None = None
    late_after_min: int | None = Field(default=None, ge=0, le=600, examples=[10])
    allow_visitors: bool = False
    geofence: GeofenceIn | None = None


class ReasonIn(BaseModel):
    """A reason, where one is asked for (cancelling, marking present, rejecting)."""

    reason: str = Field(default="", max_length=500, examples=["现场签到时手机没电"])


class ExpectedIn(BaseModel):
    """Add the person to the expected attendees (true) or take them off (false)."""

    expected: bool = Field(examples=[True])


class LeaveIn(BaseModel):
    """A leave request for one of the asker's activities."""

    activity_id: int = Field(examples=[7])
    kind: str = Field(json_schema_extra={"enum": list(LEAVE_KINDS)}, examples=["事假"])
    reason: str = Field(max_length=500, examples=["出差在外"])


# ---- helpers --------------------------------------------------------------------------------


def local_when(instant: datetime, tz: ZoneInfo) -> str:
    """An instant as the business time zone's `11月28日 14:30`, as the chat writes it."""
    when = instant.astimezone(tz)
    return f"{when.month}月{when.day}日 {when:%H:%M}"


def _in_zone(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    # A phone's date and time inputs carry no zone; the person meant the business zone.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=tz)


def _managed(session: Session, person: Person, activity_id: int) -> Activity:
    try:
        return managed_activity(session=session, activity_id=activity_id, person=person)
    except ActivityError as exc:
        raise http_error(exc) from None


@contextmanager
def _writing(engine: Engine) -> Iterator[Session]:
    """A write transaction whose refusals become 4xx answers with the Chinese reason."""
    try:
        with write_session(engine) as session:
            yield session
    except (ActivityError, LedgerError) as exc:
        raise http_error(exc) from None
    except IntegrityError:
        # Two taps racing on a unique row (leave, check-in, override): the loser is told so.
        raise HTTPException(409, "操作冲突：该记录刚刚已被提交，请刷新页面后查看") from None
    except (DataError, OverflowError):
        # Input pydantic lets through but the database or datetime cannot hold (NUL, year 1).
        raise HTTPException(400, "提交的内容无法保存，请检查日期和文字后重试") from None


def _leave_state(leave: LeaveRequest) -> LeaveState:
    assert leave.id is not None
    status = LeaveStatus(leave.status)
    return LeaveState(id=leave.id, code=f"Q{leave.id}", kind=LeaveKind(leave.kind).label,
                      reason=leave.reason, status=status, status_label=status.label,
                      decision_reason=leave.decision_reason, decided_at=leave.decided_at)


def _leave_item(session: Session, leave: LeaveRequest) -> LeaveItem:
    activity = session.get(Activity, leave.activity_id)
    member = session.get(Person, leave.person_id)
    assert activity is not None and member is not None and member.id is not None
    return LeaveItem(**_leave_state(leave).model_dump(), activity_id=leave.activity_id,
                     activity_kind=activity.kind, activity_title=activity.title,
                     activity_starts_at=activity.starts_at, person_id=member.id,
                     person_name=member.name, created_at=leave.created_at)


def _my_status(state: ActivityStatus, leave: LeaveRequest | None, check: CheckIn | None,
               outcome: Outcome | None) -> str:
    if outcome is not None:
        return outcome.label
    if check is not None:
        return "已签到（迟到）" if check.late else "已签到"
    if state is ActivityStatus.CANCELLED:
        return "活动已取消"
    if leave is not None:
        return f"请假{LeaveStatus(leave.status).label}"
    if state is ActivityStatus.CLOSED:
        return "未签到"
    return ""


def _summary(activity: Activity, now: datetime, *, expected: bool, leave: LeaveRequest | None,
             check: CheckIn | None, outcome: Outcome | None) -> ActivitySummary:
    assert activity.id is not None
    state = status_at(activity, now)
    # The service decides; this only says whether the leave form is worth showing.
    may_ask = (expected and leave is None and check is None and now < activity.leave_deadline_at
               and state not in (ActivityStatus.CANCELLED, ActivityStatus.FINAL))
    return ActivitySummary(
        id=activity.id, kind=activity.kind, title=activity.title, starts_at=activity.starts_at,
        ends_at=activity.ends_at, place=activity.place, status=state,
        status_label=state.label, leave_deadline_at=activity.leave_deadline_at,
        my_leave=_leave_state(leave) if leave else None,
        my_checkin=MyCheckIn(checked_in_at=check.checked_in_at, late=check.late,
                             manual=check.method == CheckInMethod.MANUAL) if check else None,
        my_outcome=outcome, my_status=_my_status(state, leave, check, outcome),
        can_request_leave=may_ask)


def _presence(session: Session, activity: Activity, person_id: int | None
              ) -> tuple[CheckIn | None, Outcome | None]:
    """The person's check-in and, once attendance is final, their outcome."""
    assert activity.id is not None
    if activity.status == ActivityStatus.FINAL:
        outcome = next((Outcome(a.outcome) for a, p in
                        attendance_of(session=session, activity_id=activity.id)
                        if p.id == person_id), None)
    else:
        outcome = None
    check = next((c for c, p in check_ins(session=session, activity_id=activity.id)
                  if p.id == person_id), None)
    return check, outcome


def _leaves_of(session: Session, activity_id: int) -> dict[int, LeaveRequest]:
    """Every leave request of an activity, by person."""
    return {leave.person_id: leave for leave in session.exec(
        select(LeaveRequest).where(LeaveRequest.activity_id == activity_id)
        .order_by(col(LeaveRequest.id)))}


# ---- the shared views -----------------------------------------------------------------------


def activity_list(*, session: Session, person: Person, now: datetime,
                  scope: ActivityScope) -> ActivityList:
    """The person's upcoming or past activities with their leave and check-in status."""
    past = scope == "past"
    views = activities_for(session=session, person=person, now=now, past=past,
                           limit=PAST_LIMIT if past else UPCOMING_LIMIT)
    items = []
    for view in views:
        check, outcome = _presence(session, view.activity, person.id)
        items.append(_summary(view.activity, now, expected=True, leave=view.leave, check=check,
                              outcome=outcome))
    home = session.get(Organization, person.organization_id)
    assert home is not None
    return ActivityList(scope=scope, items=items,
                        can_create=can_manage_branch(session=session, person=person, branch=home))


def activity_detail(*, session: Session, person: Person, activity_id: int,
                    now: datetime) -> ActivityDetail:
    """One activity as the person may see it; managers also get the attendance table.

    Raises ActivityError when the person may not see it."""
    activity = visible_activity(session=session, activity_id=activity_id, person=person)
    try:
        managed_activity(session=session, activity_id=activity_id, person=person)
        manager = True
    except ActivityError:
        manager = False
    expected = is_expected(session=session, activity=activity, person=person)
    leaves = _leaves_of(session, activity_id)
    check, outcome = _presence(session, activity, person.id)
    summary = _summary(activity, now, expected=expected, leave=leaves.get(person.id or 0),
                       check=check, outcome=outcome)
    state = summary.status
    org = session.get(Organization, activity.organization_id)
    assert org is not None
    open_ = state not in (ActivityStatus.FINAL, ActivityStatus.CANCELLED)
    return ActivityDetail(
        activity=summary, organization_name=org.name,
        checkin_opens_at=activity.checkin_opens_at, checkin_closes_at=activity.checkin_closes_at,
        late_after_min=activity.late_after_min, allow_visitors=activity.allow_visitors,
        has_geofence=activity.geo_radius_m is not None, is_expected=expected,
        is_manager=manager,
        can_close=manager and state in (ActivityStatus.PLANNED, ActivityStatus.OPEN),
        can_finalize=manager and open_ and now >= activity.starts_at,
        can_cancel=manager and open_,
        attendance=_attendance(session, activity, leaves, open_, person) if manager else None)


def _attendance(session: Session, activity: Activity, leaves: dict[int, LeaveRequest],
                open_: bool, viewer: Person) -> AttendanceSheet:
    assert activity.id is not None
    final = activity.status == ActivityStatus.FINAL
    outcomes: dict[int, Outcome] = {}
    people: dict[int, Person] = {}
    if final:
        # Who was expected is what was recorded then, not what the roster says today.
        for row, person in attendance_of(session=session, activity_id=activity.id):
            outcomes[row.person_id] = Outcome(row.outcome)
            people[row.person_id] = person
    else:
        people = {p.id: p for p in expected_attendees(session=session, activity=activity)
                  if p.id is not None}
    checks: dict[int, CheckIn] = {}
    expected_ids = set(people)
    for check, person in check_ins(session=session, activity_id=activity.id):
        checks[check.person_id] = check
        people.setdefault(check.person_id, person)  # visitors get a row too
    rows = []
    for pid in sorted(people):
        check = checks.get(pid)
        leave = leaves.get(pid)
        outcome = outcomes.get(pid)
        rows.append(AttendeeRow(
            person_id=pid, name=people[pid].name, expected=pid in expected_ids,
            checked_in_at=check.checked_in_at if check else None,
            late=bool(check and check.late),
            manual=bool(check and check.method == CheckInMethod.MANUAL),
            leave=_leave_state(leave) if leave else None, outcome=outcome,
            outcome_label=outcome.label if outcome else None,
            # Nobody offers to vouch for themselves: no self-awarded attendance points.
            can_mark_present=(open_ and pid in expected_ids and check is None
                              and pid != viewer.id)))
    inside = [r for r in rows if r.expected]
    approved = {r.person_id for r in inside
                if r.leave and r.leave.status is LeaveStatus.APPROVED}
    counts = AttendanceCounts(
        expected=len(inside), checked_in=sum(1 for r in inside if r.checked_in_at),
        late=sum(1 for r in inside if r.late), visitors=len(rows) - len(inside),
        approved_leave=len(approved),
        pending_leave=sum(1 for r in inside if r.leave and r.leave.status is LeaveStatus.PENDING),
        missing=sum(1 for r in inside if not r.checked_in_at and r.person_id not in approved))
    by_outcome = {o: sum(1 for v in outcomes.values() if v is o) for o in Outcome}
    return AttendanceSheet(final=final, counts=counts, outcomes=by_outcome if final else None,
                           rows=rows)


def leave_list(*, session: Session, person: Person, now: datetime,
               scope: LeaveScope) -> LeaveList:
    """The person's own leave requests (newest first), or those this secretary may decide.

    Raises ActivityError when a non-secretary asks for the pending ones."""
    if scope == "pending":
        if not secretary_branches(session=session, person=person):
            raise ActivityError(NOT_SECRETARY, kind=Refusal.forbidden)
        leaves = pending_leaves(session=session, secretary=person)
    else:
        views = [*activities_for(session=session, person=person, now=now),
                 *activities_for(session=session, person=person, now=now, past=True)]
        leaves = sorted((v.leave for v in views if v.leave is not None),
                        key=lambda leave: leave.id or 0, reverse=True)
    return LeaveList(scope=scope, items=[_leave_item(session, leave) for leave in leaves])


# ---- activities -----------------------------------------------------------------------------

NOT_FOUND = {404: {"model": Problem, "description": "找不到活动，或无权查看"}}
MANAGED = {400: {"model": Problem, "description": "缺少原因等内容有误"},
           403: {"model": Problem, "description": "不是该支部的书记或上级党组织工作人员"},
           404: {"model": Problem, "description": "找不到活动"},
           409: {"model": Problem, "description": "当前状态下不能这样操作，或重复提交"}}


@router.get("/activities", response_model=ActivityList)
def list_activities(person: ApiPerson, session: SessionDep,
                    scope: ActivityScope = "upcoming") -> ActivityList:
    """My activities: upcoming and open ones, or past ones, with my leave and check-in status."""
    return activity_list(session=session, person=person, now=utcnow(), scope=scope)


@router.post("/activities", response_model=ActivityDetail, status_code=201, responses={
    400: {"model": Problem, "description": "内容有误，例如结束时间早于开始时间"},
    403: {"model": Problem, "description": "不能为该支部发起活动"},
    404: {"model": Problem, "description": "找不到支部"}})
def post_activity(body: ActivityIn, person: ApiPerson, engine: EngineDep,
                  settings: SettingsDep) -> ActivityDetail:
    """Plan an activity (branch secretaries and party committee staff) for one or more branches."""
    tz = settings.tz
    now = utcnow()
    with _writing(engine) as session:
        branches = []
        for branch_id in body.branch_ids or [person.organization_id]:
            branch = session.get(Organization, branch_id)
            if branch is None:
                raise HTTPException(404, f"找不到组织 {branch_id}")
            if not can_manage_branch(session=session, person=person, branch=branch):
                raise HTTPException(403, f"您不能为“{branch.name}”发起活动")
            branches.append(branch)
        fence = body.geofence
        activity = create_activity(
            session=session, branch=branches[0], also_branches=branches[1:], kind=body.kind,
            title=body.title, starts_at=_in_zone(body.starts_at, tz), place=body.place,
            ends_at=_in_zone(body.ends_at, tz), creator=person,
            defaults=ActivityDefaults.from_settings(settings),
            checkin_opens_at=_in_zone(body.checkin_opens_at, tz),
            checkin_closes_at=_in_zone(body.checkin_closes_at, tz),
            late_after_min=body.late_after_min, allow_visitors=body.allow_visitors,
            geofence=Geofence(fence.lat, fence.lng, fence.radius_m) if fence else None)
        assert activity.id is not None
        return activity_detail(session=session, person=person, activity_id=activity.id,
                               now=now)


@router.get("/activities/{activity_id}", response_model=ActivityDetail, responses=NOT_FOUND)
def get_activity(activity_id: int, person: ApiPerson, session: SessionDep) -> ActivityDetail:
    """An activity, its state now and my status; its managers also get the attendance table."""
    try:
        return activity_detail(session=session, person=person, activity_id=activity_id,
                               now=utcnow())
    except ActivityError as exc:
        raise http_error(exc) from None


def _action(activity: Activity, message: str) -> ActionAnswer:
    assert activity.id is not None
    state = ActivityStatus(activity.status)
    return ActionAnswer(activity_id=activity.id, status=state, status_label=state.label,
                        message=message)


@router.post("/activities/{activity_id}/close", response_model=ActionAnswer, responses=MANAGED)
def post_close(activity_id: int, person: ApiPerson, engine: EngineDep) -> ActionAnswer:
    """End check-in now (the meeting is over)."""
    with _writing(engine) as session:
        _managed(session, person, activity_id)
        activity = close_checkin(session=session, activity_id=activity_id, actor=person,
                                 now=utcnow())
        return _action(activity, "已结束签到。")


def _final_message(counts: dict[Outcome, int], written: int) -> str:
    parts = "、".join(f"{o.label} {counts[o]} 人" for o in Outcome)
    return f"考勤已确认：{parts}，记入积分 {written} 条。"


@router.post("/activities/{activity_id}/finalize", response_model=FinalAnswer,
             responses=MANAGED)
def post_finalize(activity_id: int, person: ApiPerson, engine: EngineDep,
                  settings: SettingsDep) -> FinalAnswer:
    """Make attendance final: outcomes and points by the scheme; a repeat changes nothing."""
    with _writing(engine) as session:
        _managed(session, person, activity_id)
        result = finalize(session=session, activity_id=activity_id, now=utcnow(),
                          tz=settings.tz, actor=person)
        if result.changed:
            counts = {o: result.count(o) for o in Outcome}
            message = _final_message(counts, len(result.entries))
        else:
            recorded = [Outcome(a.outcome)
                        for a, _ in attendance_of(session=session, activity_id=activity_id)]
            counts = {o: recorded.count(o) for o in Outcome}
            message = "考勤此前已确认，无需重复操作。"
        return FinalAnswer(activity_id=activity_id, changed=result.changed, counts=counts,
                           entries_written=len(result.entries), notified=result.notified,
                           message=message)


@router.post("/activities/{activity_id}/cancel", response_model=ActionAnswer, responses=MANAGED)
def post_cancel(activity_id: int, body: ReasonIn, person: ApiPerson,
                engine: EngineDep) -> ActionAnswer:
    """Cancel an activity that is not yet final, with a reason."""
    with _writing(engine) as session:
        _managed(session, person, activity_id)
        activity = cancel_activity(session=session, activity_id=activity_id, actor=person,
                                   reason=body.reason, now=utcnow())
        return _action(activity, "活动已取消。")


@router.post("/activities/{activity_id}/attendees/{person_id}/present",
             response_model=MarkedAnswer, responses=MANAGED)
def post_mark_present(activity_id: int, person_id: int, body: ReasonIn, person: ApiPerson,
                      engine: EngineDep) -> MarkedAnswer:
    """Record an expected attendee as present by hand, with a reason (audited)."""
    with _writing(engine) as session:
        _managed(session, person, activity_id)
        result = mark_present(session=session, activity_id=activity_id, person_id=person_id,
                              actor=person, reason=body.reason, now=utcnow())
        member = session.get(Person, person_id)
        assert member is not None
        message = (f"已为{member.name}补登签到。" if result.created
                   else f"{member.name}已签到，无需补登。")
        return MarkedAnswer(activity_id=activity_id, person_id=person_id, name=member.name,
                            created=result.created,
                            checked_in_at=result.check_in.checked_in_at, message=message)


def _may_add(session: Session, actor: Person, person_id: int) -> None:
    """Refuse adding someone from outside the organisations the actor manages.

    set_expected does not check it, and an added person is scored when attendance is final, so
    without this a branch secretary could dock points of anyone in any committee."""
    member = session.get(Person, person_id)
    if member is None:
        raise HTTPException(404, "找不到该人员")
    home = session.get(Organization, member.organization_id)
    assert home is not None
    if not can_manage_branch(session=session, person=actor, branch=home):
        raise HTTPException(403, "只能添加您所管理的党组织中的人员；联合活动请在发起时选择多个支部")


@router.put("/activities/{activity_id}/attendees/{person_id}", response_model=ExpectedAnswer,
            responses=MANAGED)
def put_attendee(activity_id: int, person_id: int, body: ExpectedIn, person: ApiPerson,
                 engine: EngineDep) -> ExpectedAnswer:
    """Add a person to, or take them off, the activity's expected attendees."""
    with _writing(engine) as session:
        _managed(session, person, activity_id)
        if body.expected:
            _may_add(session, person, person_id)
        set_expected(session=session, activity_id=activity_id, person_id=person_id,
                     expected=body.expected, actor=person)
        member = session.get(Person, person_id)
        assert member is not None
        message = (f"已将{member.name}加入应到人员。" if body.expected
                   else f"已将{member.name}移出应到人员。")
        return ExpectedAnswer(activity_id=activity_id, person_id=person_id,
                              expected=body.expected, message=message)


# ---- leave and approvals --------------------------------------------------------------------


@router.get("/leave-requests", response_model=LeaveList, responses={
    403: {"model": Problem, "description": "不是支部书记（scope=pending）"}})
def list_leave_requests(person: ApiPerson, session: SessionDep,
                        scope: LeaveScope = "mine") -> LeaveList:
    """My leave requests, or (secretaries) the pending ones I may decide."""
    try:
        return leave_list(session=session, person=person, now=utcnow(), scope=scope)
    except ActivityError as exc:
        raise http_error(exc) from None


@router.post("/leave-requests", response_model=LeaveCreated, status_code=201, responses={
    400: {"model": Problem, "description": "请假类型不对或缺少理由"},
    404: {"model": Problem, "description": "找不到活动"},
    409: {"model": Problem, "description": "已请过假、已过截止时间、活动已取消，或重复提交"}})
def post_leave_request(body: LeaveIn, person: ApiPerson, engine: EngineDep,
                       settings: SettingsDep) -> LeaveCreated:
    """Ask for leave from one of my activities; the branch secretaries get a card to decide."""
    with _writing(engine) as session:
        leave = request_leave(session=session, person=person, activity_id=body.activity_id,
                              kind=body.kind, reason=body.reason, now=utcnow())
        activity = session.get(Activity, leave.activity_id)
        assert activity is not None
        reached = queue_leave_requested(session=session, leave=leave,
                                        when=local_when(activity.starts_at, settings.tz))
        message = f"已提交请假申请 Q{leave.id}，等待支部书记审批，结果会私信通知您。"
        if not reached:
            message += "（本支部暂未登记书记账号，请直接联系支部书记。）"
        return LeaveCreated(**_leave_item(session, leave).model_dump(), notified=reached,
                            message=message)


def _decide(leave_id: int, person: Person, engine: Engine, *, approve: bool,
            reason: str) -> LeaveDecided:
    verb = "批准" if approve else "驳回"
    with _writing(engine) as session:
        leave, changed = decide_leave(session=session, leave_id=leave_id, decider=person,
                                      approve=approve, reason=reason, now=utcnow())
        if changed:
            queue_leave_decided(session=session, leave=leave)
            message = f"已{verb}请假申请 Q{leave_id}。"
        else:
            message = f"请假申请 Q{leave_id} 此前已{verb}，无需重复操作。"
        return LeaveDecided(**_leave_item(session, leave).model_dump(), changed=changed,
                            message=message)


DECIDE = {400: {"model": Problem, "description": "驳回时未写理由"},
          403: {"model": Problem, "description": "不是该支部的书记，或是本人的申请"},
          404: {"model": Problem, "description": "找不到请假申请"},
          409: {"model": Problem, "description": "已作出相反决定，或活动已结束、已取消"}}


@router.post("/leave-requests/{leave_id}/approve", response_model=LeaveDecided,
             responses=DECIDE)
def approve_leave(leave_id: int, person: ApiPerson, engine: EngineDep,
                  body: ReasonIn | None = None) -> LeaveDecided:
    """Approve a leave request (the branch's secretary); the member is told."""
    return _decide(leave_id, person, engine, approve=True, reason=body.reason if body else "")


@router.post("/leave-requests/{leave_id}/reject", response_model=LeaveDecided,
             responses=DECIDE)
def reject_leave(leave_id: int, body: ReasonIn, person: ApiPerson,
                 engine: EngineDep) -> LeaveDecided:
    """Reject a leave request with a reason (the branch's secretary); the member is told."""
    return _decide(leave_id, person, engine, approve=False, reason=body.reason)

