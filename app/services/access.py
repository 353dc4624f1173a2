"""Who is who: resolving platform users to people, and roles scoped to organisation subtrees."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from app.domain.vocab import Role
from app.models import Organization, Person, Platform, RoleAssignment

# The simulator stands in for DingTalk, so its people are known by their DingTalk userid.
_USERID_COLUMN = {
    Platform.DINGTALK: Person.dingtalk_userid,
    Platform.SIMULATOR: Person.dingtalk_userid,
    Platform.WECOM: Person.wecom_userid,
}
# Built once: every message asks, and building the statement cost as much as running it.
_SENDER_QUERY = {
    platform: select(Person, RoleAssignment.role)
    .outerjoin(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
    .where(column == bindparam("userid"))
    for platform, column in _USERID_COLUMN.items()
}


def person_for(*, session: Session, platform: str, userid: str | None) -> Person | None:
    """The active person a platform userid belongs to; never from anything the user typed."""
    found = sender(session=session, platform=platform, userid=userid)
    return found[0] if found is not None else None


def sender(
    *, session: Session, platform: str, userid: str | None
) -> tuple[Person, set[Role]] | None:
    """The active person a platform userid belongs to, with every role they hold (one query)."""
    if not userid:
        return None
    rows = session.exec(_SENDER_QUERY[Platform(platform)], params={"userid": userid}).all()
    if not rows or not rows[0][0].active:
        return None
    return rows[0][0], {Role(role) for _, role in rows if role is not None}


def platform_userid(person: Person, platform: str) -> str | None:
    """The person's userid on a platform."""
    return person.wecom_userid if Platform(platform) is Platform.WECOM else person.dingtalk_userid


def roles_over(*, session: Session, person: Person, org: Organization) -> set[Role]:
    """Roles the person holds over `org`: assignments on it or on any ancestor."""
    chain = [int(i) for i in org.path.strip("/").split("/") if i]
    return {
        Role(a.role)
        for a in session.exec(
            select(RoleAssignment).where(
                RoleAssignment.person_id == person.id,
                col(RoleAssignment.organization_id).in_(chain),
            )
        )
    }


def all_roles(*, session: Session, person: Person) -> set[Role]:
    """Every role the person holds anywhere."""
    return {
        Role(a.role)
        for a in session.exec(select(RoleAssignment).where(RoleAssignment.person_id == person.id))
    }


def secretary_branches(*, session: Session, person: Person) -> list[Organization]:
    """Organisations the person is branch secretary of (their subtrees are theirs to approve)."""
    return list(
        session.exec(
            select(Organization)
            .join(RoleAssignment, col(RoleAssignment.organization_id) == Organization.id)
            .where(
                RoleAssignment.person_id == person.id,
                RoleAssignment.role == Role.branch_secretary,
            )
        )
    )


def can_manage_branch(*, session: Session, person: Person, branch: Organization) -> bool:
    """Branch secretaries of it, committee staff and admins above it may manage a branch."""
    return bool(
        roles_over(session=session, person=person, org=branch)
        & {Role.branch_secretary, Role.committee_staff, Role.admin}
    )
