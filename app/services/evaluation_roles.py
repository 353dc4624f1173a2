"""Who acts in what capacity in the monthly evaluation, always within organisation subtrees.

- the branch secretary: a `branch_secretary` assignment on the member's branch itself;
- the committee (党委): committee staff or an administrator over the branch, or the secretary of
  a committee or general branch above it (党委书记 / 党总支书记 are imported as 书记 on that node);
- a declaration's reviewer: a `declaration_reviewer` (指定专人审核) or one of the indicator's
  awarders, held over the member's organisation.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.domain.evaluation import Capacity
from app.domain.scheme import Indicator
from app.domain.vocab import OrgKind, Role
from app.models import Organization, Person, RoleAssignment
from app.services import access

COMMITTEE_ROLES = frozenset({Role.committee_staff, Role.admin})
_ABOVE_BRANCHES = frozenset({OrgKind.committee, OrgKind.general_branch})


def is_branch_secretary(*, session: Session, person: Person, branch: Organization) -> bool:
    """Whether the person is secretary of this very branch."""
    return session.exec(
        select(RoleAssignment.id).where(
            RoleAssignment.person_id == person.id,
            RoleAssignment.role == Role.branch_secretary,
            RoleAssignment.organization_id == branch.id,
        )
    ).first() is not None


def is_committee_over(*, session: Session, person: Person, org: Organization) -> bool:
    """Whether the person acts for the committee over `org`'s subtree."""
    chain = [int(i) for i in org.path.strip("/").split("/") if i]
    held = session.exec(
        select(RoleAssignment.role, Organization.kind)
        .join(Organization, col(Organization.id) == RoleAssignment.organization_id)
        .where(RoleAssignment.person_id == person.id,
               col(RoleAssignment.organization_id).in_(chain))
    ).all()
    return any(
        Role(role) in COMMITTEE_ROLES
        or (Role(role) is Role.branch_secretary and OrgKind(kind) in _ABOVE_BRANCHES)
        for role, kind in held
    )


def scorer_of(*, session: Session, member: Person, branch: Organization) -> Capacity:
    """Who scores this member: the committee for a branch secretary, else the secretary."""
    if is_branch_secretary(session=session, person=member, branch=branch):
        return Capacity.committee
    return Capacity.secretary


def capacity_of(
    *, session: Session, actor: Person, member: Person, branch: Organization, wanted: Capacity
) -> Capacity:
    """The capacity the actor acts in on the member's month: `wanted` if they hold it."""
    if actor.id == member.id:
        return Capacity.member
    held = [
        capacity
        for capacity, holds in (
            (Capacity.secretary, is_branch_secretary(session=session, person=actor, branch=branch)),
            (Capacity.committee, is_committee_over(session=session, person=actor, org=branch)),
        )
        if holds
    ]
    if wanted in held:
        return wanted
    return held[0] if held else Capacity.outsider


def may_review_declaration(
    *, session: Session, reviewer: Person, member_org: Organization, indicator: Indicator
) -> bool:
    """Whether the person is a designated reviewer of this indicator for the member's org."""
    roles = access.roles_over(session=session, person=reviewer, org=member_org)
    return bool(roles & {Role.declaration_reviewer, *indicator.awarders})
