"""Activities of a branch, and leave requests for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.domain.vocab import Role
from app.models import (
    Activity,
    ActivityStatus,
    LeaveKind,
    LeaveRequest,
    LeaveStatus,
    Organization,
    Person,
    RoleAssignment,
)
from app.services import audit, orgs
from app.services.access import roles_over, secretary_branches
from app.services.reports import branch_of

ACTIVITY_KINDS = ("主题党日", "支部党员大会", "支委会", "党小组会", "党课", "组织生活会",
                  "民主评议党员", "集中学习", "志愿服务")
LEAVE_KINDS = {kind.label: kind for kind in LeaveKind}


class ActivityError(ValueError):
    """An activity or leave operation was refused; the message is for the user, in Chinese."""


@dataclass(frozen=True)
class ActivityView:
    """An activity as a member sees it in the chat, with their own leave status."""

    activity: Activity
    leave: LeaveRequest | None


def create_activity(
    *, session: Session, branch: Organization, kind: str, title: str, starts_at: datetime,
    ends_at: datetime | None = None, place: str = "", creator: Person | None = None,
) -> Activity:
    """Plan an activity for a branch."""
    if kind not in ACTIVITY_KINDS:
        raise ActivityError(f"活动类型应为：{'、'.join(ACTIVITY_KINDS)}")
    activity = Activity(
        organization_id=branch.id, kind=kind, title=title, starts_at=starts_at,
        ends_at=ends_at or starts_at + timedelta(hours=2), place=place,
        created_by_id=creator.id if creator else None,
    )
    session.add(activity)
    session.flush()
    audit.record(session=session, actor_id=creator.id if creator else None,
                 actor_label=creator.name if creator else "system", action="create",
                 entity="activity", entity_id=activity.id,
                 after={"kind": kind, "title": title, "starts_at": starts_at.isoformat()})
    return activity


def upcoming(*, session: Session, person: Person, now: datetime) -> list[ActivityView]:
    """The person's branch activities not yet over, soonest first, with their leave status."""
    branch = branch_of(session, person)
    chain = [int(i) for i in branch.path.strip("/").split("/") if i]
    activities = session.exec(
        select(Activity)
        .where(col(Activity.organization_id).in_(chain), Activity.ends_at >= now,
               col(Activity.status).in_([ActivityStatus.PLANNED, ActivityStatus.OPEN]))
        .order_by(col(Activity.starts_at))
    ).all()
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
    branch = branch_of(session, person)
    if activity is None or not branch.path.startswith(
        _path_of(session, activity.organization_id)
    ):
        raise ActivityError(f"找不到活动 {activity_id}，请先发送 /活动 查看序号")
    if activity.starts_at <= now:
        raise ActivityError("活动已经开始，不能再请假；如有特殊情况请直接联系支部书记")
    existing = session.exec(
        select(LeaveRequest).where(LeaveRequest.activity_id == activity_id,
                                   LeaveRequest.person_id == person.id)
    ).first()
    if existing is not None:
        state = LeaveStatus(existing.status).label
        raise ActivityError(f"您已为该活动请过假（编号 Q{existing.id}，{state}）")
    leave = LeaveRequest(activity_id=activity_id, person_id=person.id,
                         kind=LEAVE_KINDS[kind], reason=reason.strip())
    session.add(leave)
    session.flush()
    audit.record(session=session, actor_id=person.id, actor_label=person.name, action="create",
                 entity="leave_request", entity_id=leave.id,
                 after={"activity_id": activity_id, "kind": kind, "reason": leave.reason})
    return leave


def _path_of(session: Session, org_id: int) -> str:
    org = session.get(Organization, org_id)
    assert org is not None
    return org.path


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
        raise ActivityError(f"找不到请假申请 Q{leave_id}")
    activity = session.get(Activity, leave.activity_id)
    assert activity is not None
    org = session.get(Organization, activity.organization_id)
    assert org is not None
    if Role.branch_secretary not in roles_over(session=session, person=decider, org=org):
        raise ActivityError("只有该支部的书记可以审批这条请假申请")
    if leave.person_id == decider.id:
        raise ActivityError("不能审批自己的请假申请")
    wanted = LeaveStatus.APPROVED if approve else LeaveStatus.REJECTED
    if leave.status != LeaveStatus.PENDING:
        if leave.status == wanted:
            return leave, False
        raise ActivityError(f"请假申请 Q{leave_id} 已{LeaveStatus(leave.status).label}，不能更改")
    if not approve and not reason.strip():
        raise ActivityError("驳回时请写明理由，例如：/驳回 Q12 本次会议需全员参加")
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
        .where(LeaveRequest.status == LeaveStatus.PENDING)
        .order_by(col(LeaveRequest.id))
    ).all()
    return [leave for leave, path in rows if any(path.startswith(p) for p in paths)]
