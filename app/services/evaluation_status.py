"""Progress of the monthly evaluation per branch, and who still has something to do (what the
status command shows and the reminder jobs send)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.domain.evaluation import BranchPhase, MonthState, branch_phase
from app.domain.periods import parse_month
from app.models import BranchMonth, MemberMonth, Organization, OrgKind, Person
from app.services.evaluation_base import branch_members, members_under

_SCORED = frozenset({MonthState.scored, MonthState.published, MonthState.objected,
                     MonthState.closed})
_PUBLISHED = frozenset({MonthState.published, MonthState.objected, MonthState.closed})


@dataclass(frozen=True)
class BranchProgress:
    """One branch's month in numbers."""

    branch_id: int
    branch_name: str
    members: int
    self_evaluated: int
    late: int
    scored: int
    published: int
    objections_open: int
    phase: BranchPhase
    objection_deadline: datetime | None


def _months(session: Session, person_ids: list[int], period: str) -> dict[int, MemberMonth]:
    rows = session.exec(
        select(MemberMonth).where(col(MemberMonth.person_id).in_(person_ids),
                                  MemberMonth.period == period)
    ).all()
    return {row.person_id: row for row in rows}


def evaluation_status(*, session: Session, org: Organization,
                      period: str) -> list[BranchProgress]:
    """Per branch of `org`'s subtree: self-evaluated x/y, scored, published, objections, phase."""
    parse_month(period)
    by_branch: dict[int, list[Person]] = defaultdict(list)
    branches: dict[int, Organization] = {}
    for person, branch in members_under(session=session, org=org):
        by_branch[branch.id or 0].append(person)
        branches[branch.id or 0] = branch
    # Branches without members are listed too, so that none is overlooked.
    for branch in session.exec(select(Organization).where(
            col(Organization.path).startswith(org.path), Organization.kind == OrgKind.branch)):
        branches.setdefault(branch.id or 0, branch)
    months = _months(session, [p.id or 0 for ps in by_branch.values() for p in ps], period)
    published = {
        bm.branch_id: bm for bm in session.exec(
            select(BranchMonth).where(col(BranchMonth.branch_id).in_(list(branches)),
                                      BranchMonth.period == period))
    }
    out = []
    for branch_id, branch in sorted(branches.items(), key=lambda item: item[1].path):
        rows = [months[p.id or 0] for p in by_branch[branch_id] if p.id in months]
        states = [MonthState(r.state) for r in rows]
        bm = published.get(branch_id)
        counts = {
            "members": len(by_branch[branch_id]),
            "self_evaluated": sum(1 for r in rows if r.self_confirmed_at is not None),
            "scored": sum(1 for s in states if s in _SCORED),
        }
        out.append(BranchProgress(
            branch_id=branch_id, branch_name=branch.name, **counts,
            late=sum(1 for r in rows if r.self_late),
            published=sum(1 for s in states if s in _PUBLISHED),
            objections_open=states.count(MonthState.objected),
            phase=branch_phase(**counts, published=bool(bm and bm.published_at),
                               closed=bool(bm and bm.closed_at)),
            objection_deadline=bm.objection_deadline if bm else None,
        ))
    return out


def members_not_self_evaluated(*, session: Session, branch: Organization,
                               period: str) -> list[Person]:
    """Members of the branch who have not confirmed the month's self-evaluation."""
    people = branch_members(session=session, branch=branch)
    months = _months(session, [p.id or 0 for p in people], period)
    return [p for p in people
            if p.id not in months or months[p.id].state == MonthState.open]


def branches_pending_scoring(*, session: Session, org: Organization,
                             period: str) -> list[tuple[Organization, list[Person]]]:
    """Branches of `org`'s subtree with members not yet scored, and who they are."""
    pending: dict[int, tuple[Organization, list[Person]]] = {}
    people = members_under(session=session, org=org)
    months = _months(session, [p.id or 0 for p, _ in people], period)
    for person, branch in people:
        month = months.get(person.id or 0)
        if month is None or MonthState(month.state) not in _SCORED:
            pending.setdefault(branch.id or 0, (branch, []))[1].append(person)
    return list(pending.values())


def windows_closing(*, session: Session, now: datetime,
                    within: timedelta) -> list[tuple[BranchMonth, Organization]]:
    """Published branch months whose objection window ends within `within` from now."""
    return list(session.exec(
        select(BranchMonth, Organization)
        .join(Organization, col(Organization.id) == BranchMonth.branch_id)
        .where(col(BranchMonth.closed_at).is_(None),
               col(BranchMonth.objection_deadline) > now,
               col(BranchMonth.objection_deadline) <= now + within)
        .order_by(col(BranchMonth.objection_deadline))
    ).all())
