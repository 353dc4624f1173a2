"""Activities of a branch, and leave requests for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, or_
from sqlmodel import Session, col, select

from app.config import Settings
from app.domain.checkin import WindowState, default_window, window_state
from app.domain.refusals import Refusal, Refused
from app.domain.vocab import MemberType, Role
from app.models import (
    Activity,
    ActivityBranch,
    ActivityStatus,
    AttendeeOverride,
    LeaveKind,
    LeaveRequest,
    LeaveStatus,
    Organization,
    Person,
    RoleAssignment,
)
from app.services import audit, orgs
from app.services.access import can_manage_branch, roles_over, secretary_branches

ACTIVITY_KINDS = ("主题党日", "支部党员大会", "支委会", "党小组会", "党课", "组织生活会",
                  "民主评议党员", "集中学习", "志愿服务")
LEAVE_KINDS = {kind.label: kind for kind in LeaveKind}


class ActivityError(Refused):
    """An activity or leave operation was refused; the message is for the user, in Chinese."""


@dataclass(frozen=True)
class ActivityView:
    """An activity as a member sees it in the chat, with their own leave status."""

    activity: Activity
    leave: LeaveRequest | None


@dataclass(frozen=True)
class ActivityDefaults:
    """Defaults for a new activity's check-in window, late threshold and leave deadline."""

    opens_before_min: int = 30
    closes_after_min: int = 30
    late_after_min: int = 10
    leave_deadline_before_min: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ActivityDefaults:
        """The defaults configured in settings."""
        return cls(settings.checkin_opens_before_min, settings.checkin_closes_after_min,
                   settings.checkin_late_after_min, settings.leave_deadline_before_min)


@dataclass(frozen=True)
class Geofence:
    """Where members must be to check in: a point and a radius in metres."""

    lat: float
    lng: float
    radius_m: int


def create_activity(
    *, session: Session, branch: Organization, kind: str, title: str, starts_at: datetime,
    ends_at: datetime | None = None, place: str = "", creator: Person | None = None,
    also_branches: Sequence[Organization] = (), defaults: ActivityDefaults | None = None,
    checkin_opens_at: datetime | None = None, checkin_closes_at: datetime | None = None,
    late_after_min: int | None = None, leave_deadline_at: datetime | None = None,
    allow_visitors: bool = False, geofence: Geofence | None = None,
) -> Activity:
    """Plan an activity for a branch (and any further branches); the creator must manage them."""
    if kind not in ACTIVITY_KINDS:
        raise ActivityError(f"活动类型应为：{'、'.join(ACTIVITY_KINDS)}")
    title = title.strip() or kind
    if len(title) > 200 or len(place) > 200:
        raise ActivityError("活动标题和地点都不能超过 200 个字")
    ends_at = ends_at or starts_at + timedelta(hours=2)
    if ends_at <= starts_at:
        raise ActivityError("结束时间必须晚于开始时间")
    branches = list({b.id: b for b in (branch, *also_branches)}.values())
    if creator is not None:
        for b in branches:
            if not can_manage_branch(session=session, person=creator, branch=b):
                raise ActivityError(f"您不能为“{b.name}”发起活动", kind=Refusal.forbidden)
    defaults = defaults or ActivityDefaults()
    opens, closes = default_window(starts_at=starts_at, ends_at=ends_at,
                                   opens_before_min=defaults.opens_before_min,
                                   closes_after_min=defaults.closes_after_min)
    opens, closes = checkin_opens_at or opens, checkin_closes_at or closes
    if closes <= opens:
        raise ActivityError("签到截止时间必须晚于签到开始时间")
    if geofence is not None and not (
        -90 <= geofence.lat <= 90 and -180 <= geofence.lng <= 180 and geofence.radius_m > 0
    ):
        raise ActivityError("签到范围无效：请检查经纬度和半径")
    activity = Activity(
        organization_id=branch.id, kind=kind, title=title, starts_at=starts_at,
        ends_at=ends_at, place=place.strip(), created_by_id=creator.id if creator else None,
        checkin_opens_at=opens, checkin_closes_at=closes,
        late_after_min=defaults.late_after_min if late_after_min is None else late_after_min,
        leave_deadline_at=leave_deadline_at
        or starts_at - timedelta(minutes=defaults.leave_deadline_before_min),
        allow_visitors=allow_visitors,
        geo_lat=geofence.lat if geofence else None, geo_lng=geofence.lng if geofence else None,
        geo_radius_m=geofence.radius_m if geofence else None,
    )
    session.add(activity)
    session.flush()
    assert activity.id is not None
    session.add_all(ActivityBranch(activity_id=activity.id, organization_id=b.id)
                    for b in branches if b.id is not None)
    session.flush()
    audit.record(session=session, actor_id=creator.id if creator else None,
                 actor_label=creator.name if creator else "system", action="create",
                 entity="activity", entity_id=activity.id,
                 after={"kind": kind, "title": title, "starts_at": starts_at.isoformat(),
                        "branches": ",".join(str(b.id) for b in branches)})
    return activity


def branch_paths(*, session: Session, activity: Activity) -> list[str]:
    """Materialised paths of the branches an activity is for."""
    return list(session.exec(
        select(Organization.path)
        .join(ActivityBranch, col(ActivityBranch.organization_id) == Organization.id)
        .where(ActivityBranch.activity_id == activity.id)
    ))


def expected_attendees(*, session: Session, activity: Activity) -> list[Person]:
    """Party members of the activity's branches, with the secretary's additions and removals."""
    paths = branch_paths(session=session, activity=activity)
    overrides = {o.person_id: o.expected for o in session.exec(
        select(AttendeeOverride).where(AttendeeOverride.activity_id == activity.id))}
    members = session.exec(
        select(Person)
        .join(Organization, col(Organization.id) == Person.organization_id)
        .where(col(Person.active).is_(True), Person.member_type != MemberType.masses)
        .where(under_any(paths))
    ).all()
    chosen = {p.id: p for p in members if overrides.get(p.id, True)}
    added = [pid for pid, wanted in overrides.items() if wanted and pid not in chosen]
    for person in session.exec(select(Person).where(col(Person.id).in_(added))):
        if person.active:
            chosen[person.id] = person
    return sorted(chosen.values(), key=lambda p: p.id or 0)


def under_any(paths: Sequence[str]) -> ColumnElement[bool]:
    """SQL condition: the organisation is in the subtree of one of `paths`."""
    return or_(false(), *(col(Organization.path).startswith(p) for p in paths))


def is_expected(*, session: Session, activity: Activity, person: Person) -> bool:
    """Whether the person is among the activity's expected attendees."""
    override = session.get(AttendeeOverride, (activity.id, person.id))
    if override is not None:
        return override.expected
    if not person.active or person.member_type == MemberType.masses:
        return False
    home = session.get(Organization, person.organization_id)
    assert home is not None
    return any(home.path.startswith(p) for p in branch_paths(session=session, activity=activity))


def set_expected(
    *, session: Session, activity_id: int, person_id: int, expected: bool, actor: Person,
) -> None:
    """Add a person to, or take them off, an activity's expected attendees."""
    activity = managed_activity(session=session, activity_id=activity_id, person=actor)
    if activity.status in (ActivityStatus.FINAL, ActivityStatus.CANCELLED):
        raise ActivityError("考勤已确认或活动已取消，不能再调整应到人员", kind=Refusal.conflict)
    target = session.get(Person, person_id)
    if target is None:
        raise ActivityError("找不到该人员", kind=Refusal.not_found)
    home = session.get(Organization, target.organization_id)
    assert home is not None
    if expected and not can_manage_branch(session=session, person=actor, branch=home):
        # Adding someone puts the activity (and its attendance points) on their record.
        raise ActivityError(f"只能添加您所管理组织中的人员，{target.name}不在其中",
                            kind=Refusal.forbidden)
    override = session.get(AttendeeOverride, (activity_id, person_id))
    if override is None:
        session.add(AttendeeOverride(activity_id=activity_id, person_id=person_id,
                                     expected=expected))
    else:
        override.expected = expected
    session.flush()
    audit.record(session=session, actor_id=actor.id, actor_label=actor.name,
                 action="include" if expected else "exclude", entity="activity",
                 entity_id=activity_id, after={"person_id": person_id})


def status_at(activity: Activity, now: datetime) -> ActivityStatus:
    """The activity's life-cycle state at `now`: stored for final/cancelled/closed early,
    otherwise following the check-in window."""
    stored = ActivityStatus(activity.status)
    if stored in (ActivityStatus.FINAL, ActivityStatus.CANCELLED, ActivityStatus.CLOSED):
        return stored
    state = window_state(now=now, opens_at=activity.checkin_opens_at,
                         closes_at=activity.checkin_closes_at)
    return {WindowState.NOT_OPEN: ActivityStatus.PLANNED, WindowState.OPEN: ActivityStatus.OPEN,
            WindowState.CLOSED: ActivityStatus.CLOSED}[state]


def visible_activity(*, session: Session, activity_id: int, person: Person) -> Activity:
    """An activity the person may see: one of their own branches', or one they manage."""
    activity = session.get(Activity, activity_id)
    if activity is not None and (
        is_expected(session=session, activity=activity, person=person)
        or _manages(session, activity, person)
    ):
        return activity
    raise ActivityError(f"找不到活动 {activity_id}", kind=Refusal.not_found)


def managed_activity(*, session: Session, activity_id: int, person: Person) -> Activity:
    """An activity the person manages (secretary of its branch or above)."""
    activity = session.get(Activity, activity_id)
    if activity is None:
        raise ActivityError(f"找不到活动 {activity_id}", kind=Refusal.not_found)
    if not _manages(session, activity, person):
        raise ActivityError("只有该支部的书记或上级党组织的工作人员可以管理这个活动",
                            kind=Refusal.forbidden)
    return activity


def _manages(session: Session, activity: Activity, person: Person) -> bool:
    org = session.get(Organization, activity.organization_id)
    assert org is not None
    return can_manage_branch(session=session, person=person, branch=org)


def close_checkin(*, session: Session, activity_id: int, actor: Person | None, now: datetime
                  ) -> Activity:
    """End check-in now (the meeting is over); attendance can then be made final. Without an
    actor it is the system (the CLI) closing it."""
    if actor is not None:
        activity = managed_activity(session=session, activity_id=activity_id, person=actor)
    elif (found := session.get(Activity, activity_id)) is not None:
        activity = found
    else:
        raise ActivityError(f"找不到活动 {activity_id}", kind=Refusal.not_found)
    state = status_at(activity, now)
    if state in (ActivityStatus.FINAL, ActivityStatus.CANCELLED):
        raise ActivityError(f"活动{state.label}，不能结束签到", kind=Refusal.conflict)
    if state is ActivityStatus.CLOSED:
        return activity
    activity.status = ActivityStatus.CLOSED
    activity.checkin_closes_at = min(activity.checkin_closes_at, now)
    session.flush()
    audit.record(session=session, actor_id=actor.id if actor else None,
                 actor_label=actor.name if actor else "system", action="close",
                 entity="activity", entity_id=activity.id, before={"status": state.value},
                 after={"status": ActivityStatus.CLOSED.value})
    return activity


def cancel_activity(*, session: Session, activity_id: int, actor: Person, reason: str,
                    now: datetime) -> Activity:
    """Cancel an activity that has not been made final; scans are then refused."""
    activity = managed_activity(session=session, activity_id=activity_id, person=actor)
    state = status_at(activity, now)
    if state is ActivityStatus.FINAL:
        raise ActivityError("考勤已确认的活动不能取消", kind=Refusal.conflict)
    if state is ActivityStatus.CANCELLED:
        return activity
    if not reason.strip():
        raise ActivityError("取消活动请写明原因")
    activity.status = ActivityStatus.CANCELLED
    session.flush()
    audit.record(session=session, actor_id=actor.id, actor_label=actor.name, action="cancel",
                 entity="activity", entity_id=activity.id, before={"status": state.value},
                 after={"status": ActivityStatus.CANCELLED.value, "reason": reason.strip()})
    return activity


def activities_for(
    *, session: Session, person: Person, now: datetime, past: bool = False, limit: int = 50,
) -> list[ActivityView]:
    """The person's activities with their leave status: upcoming and open (soonest first), or
    past (latest first)."""
    home = session.get(Organization, person.organization_id)
    assert home is not None
    chain = [int(i) for i in home.path.strip("/").split("/") if i]
    mine = select(ActivityBranch.activity_id).where(
        col(ActivityBranch.organization_id).in_(chain))
    added = select(AttendeeOverride.activity_id).where(
        AttendeeOverride.person_id == person.id, col(AttendeeOverride.expected).is_(True))
    removed = select(AttendeeOverride.activity_id).where(
        AttendeeOverride.person_id == person.id, col(AttendeeOverride.expected).is_(False))
    query = select(Activity).where(
        col(Activity.id).in_(mine.union(added)), col(Activity.id).not_in(removed))
    if past:
        query = query.where(Activity.checkin_closes_at < now).order_by(
            col(Activity.starts_at).desc())
    else:
        query = query.where(Activity.checkin_closes_at >= now,
                            Activity.status != ActivityStatus.CANCELLED).order_by(
            col(Activity.starts_at))
    activities = session.exec(query.limit(limit)).all()
    leaves = {
        leave.activity_id: leave
        for leave in session.exec(
            select(LeaveRequest).where(
                LeaveRequest.person_id == person.id,
                col(LeaveRequest.activity_id).in_([a.id for a in activities]),
            )
        )
    }
    return [ActivityView(a, leaves.get(a.id)) for a in activities]


def upcoming(*, session: Session, person: Person, now: datetime) -> list[ActivityView]:
    """The person's activities not yet over, soonest first, with their leave status."""
    return activities_for(session=session, person=person, now=now)


def request_leave(
    *, session: Session, person: Person, activity_id: int, kind: str, reason: str,
    now: datetime,
) -> LeaveRequest:
    """Ask for leave from one of one's own branch's activities before it starts."""
    if kind not in LEAVE_KINDS:
        raise ActivityError(f"请假类型应为：{'、'.join(LEAVE_KINDS)}")
    if not reason.strip():
        raise ActivityError("请写明请假理由")
    activity = session.get(Activity, activity_id)
    if activity is None or not is_expected(session=session, activity=activity, person=person):
        raise ActivityError(f"找不到活动 {activity_id}", kind=Refusal.not_found)
    if activity.status == ActivityStatus.CANCELLED:
        raise ActivityError("该活动已取消，无需请假", kind=Refusal.conflict)
    if now >= activity.leave_deadline_at:
        local = "活动已经开始" if now >= activity.starts_at else "已过请假截止时间"
        raise ActivityError(f"{local}，不能再请假；如有特殊情况请直接联系支部书记",
                            kind=Refusal.conflict)
    existing = session.exec(
        select(LeaveRequest).where(LeaveRequest.activity_id == activity_id,
                                   LeaveRequest.person_id == person.id)
    ).first()
    if existing is not None:
        state = LeaveStatus(existing.status).label
        raise ActivityError(f"您已为该活动请过假（编号 Q{existing.id}，{state}）",
                            kind=Refusal.conflict)
    leave = LeaveRequest(activity_id=activity_id, person_id=person.id,
                         kind=LEAVE_KINDS[kind], reason=reason.strip())
    session.add(leave)
    session.flush()
    audit.record(session=session, actor_id=person.id, actor_label=person.name, action="create",
                 entity="leave_request", entity_id=leave.id,
                 after={"activity_id": activity_id, "kind": kind, "reason": leave.reason})
    return leave


def approvers_of(*, session: Session, leave: LeaveRequest) -> list[Person]:
    """The branch secretaries who may decide a leave request."""
    activity = session.get(Activity, leave.activity_id)
    assert activity is not None
    org = session.get(Organization, activity.organization_id)
    assert org is not None
    chain = orgs.ancestors(session, org)
    ids = session.exec(
        select(RoleAssignment.person_id).where(
            RoleAssignment.role == Role.branch_secretary,
            col(RoleAssignment.organization_id).in_([o.id for o in chain]),
        )
    ).all()
    return [p for p in (session.get(Person, i) for i in set(ids)) if p and p.active]


def decide_leave(
    *, session: Session, leave_id: int, decider: Person, approve: bool, reason: str,
    now: datetime,
) -> tuple[LeaveRequest, bool]:
    """Approve or reject a leave request as a secretary of its branch; deciding it again with
    the same outcome is a no-op, so a double click or a redelivered callback changes nothing."""
    leave = session.get(LeaveRequest, leave_id)
    if leave is None:
        raise ActivityError(f"找不到请假申请 Q{leave_id}", kind=Refusal.not_found)
    activity = session.get(Activity, leave.activity_id)
    assert activity is not None
    org = session.get(Organization, activity.organization_id)
    assert org is not None
    if Role.branch_secretary not in roles_over(session=session, person=decider, org=org):
        raise ActivityError("只有该支部的书记可以审批这条请假申请", kind=Refusal.forbidden)
    if leave.person_id == decider.id:
        raise ActivityError("不能审批自己的请假申请", kind=Refusal.forbidden)
    wanted = LeaveStatus.APPROVED if approve else LeaveStatus.REJECTED
    if leave.status != LeaveStatus.PENDING:
        if leave.status == wanted:
            return leave, False
        raise ActivityError(f"请假申请 Q{leave_id} {LeaveStatus(leave.status).label}，不能更改",
                            kind=Refusal.conflict)
    if activity.status in (ActivityStatus.FINAL, ActivityStatus.CANCELLED):
        # Attendance is already settled (or moot): a late decision would not change the points.
        raise ActivityError(f"活动{ActivityStatus(activity.status).label}，不能再审批请假",
                            kind=Refusal.conflict)
    if not approve and not reason.strip():
        raise ActivityError("驳回时请写明理由")
    leave.status = wanted
    leave.decided_by_id = decider.id
    leave.decided_at = now
    leave.decision_reason = reason.strip()
    session.flush()
    audit.record(session=session, actor_id=decider.id, actor_label=decider.name,
                 action="approve" if approve else "reject", entity="leave_request",
                 entity_id=leave.id, before={"status": LeaveStatus.PENDING.value},
                 after={"status": wanted.value, "reason": leave.decision_reason})
    return leave, True


def pending_leaves(*, session: Session, secretary: Person) -> list[LeaveRequest]:
    """Pending leave requests in the branches the person is secretary of."""
    paths = [b.path for b in secretary_branches(session=session, person=secretary)]
    if not paths:
        return []
    rows = session.exec(
        select(LeaveRequest, Organization.path)
        .join(Activity, col(Activity.id) == LeaveRequest.activity_id)
        .join(Organization, col(Organization.id) == Activity.organization_id)
        .where(LeaveRequest.status == LeaveStatus.PENDING,
               col(Activity.status).not_in([ActivityStatus.FINAL, ActivityStatus.CANCELLED]))
        .order_by(col(LeaveRequest.id))
    ).all()
    return [leave for leave, path in rows if any(path.startswith(p) for p in paths)]
