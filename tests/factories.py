"""Small builders for service tests: a committee with branches, members and a published scheme."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.domain.scheme import preset_text
from app.domain.vocab import MemberType, OrgKind, Role
from app.models import Organization, Person, RoleAssignment
from app.services import orgs, schemes


@dataclass
class Org:
    """A committee with its branches and members, as built by `build_org`."""

    committee: Organization
    branches: list[Organization]
    members: dict[int, list[Person]]

    def everyone(self) -> list[Person]:
        """Every member of every branch."""
        return [p for ps in self.members.values() for p in ps]


def build_org(
    session: Session,
    *,
    name: str = "测试党委",
    branches: int = 1,
    members: int = 3,
    scheme: str | None = "xinluo",
    effective: date = date(2026, 1, 1),
) -> Org:
    """A committee, its branches and members (the first of each branch is its secretary)."""
    committee = orgs.create_child(session, None, name, OrgKind.committee, actor_label="test")
    built = Org(committee, [], {})
    for b in range(branches):
        branch = orgs.create_child(session, committee, f"第{b + 1}党支部", OrgKind.branch,
                                   actor_label="test")
        built.branches.append(branch)
        built.members[branch.id] = []
        for m in range(members):
            person = Person(name=f"{name}{b}-{m}", member_type=MemberType.full,
                            organization_id=branch.id, dingtalk_userid=f"{name}-{b}-{m}")
            session.add(person)
            session.flush()
            session.add(RoleAssignment(person_id=person.id, role=Role.member,
                                       organization_id=branch.id))
            if m == 0:
                session.add(RoleAssignment(person_id=person.id, role=Role.branch_secretary,
                                           organization_id=branch.id))
            built.members[branch.id].append(person)
    if scheme is not None:
        schemes.publish(session=session, org=committee, content=preset_text(scheme),
                        effective_from=effective, actor_label="test")
    session.flush()
    return built


class Statements:
    """Counts the SQL statements an engine runs while active, transaction control aside (SQLite's
    BEGIN IMMEDIATE is a statement of ours; psycopg sends PostgreSQL's BEGIN itself)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.count = engine, 0

    def _seen(self, _connection: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith("BEGIN"):
            self.count += 1

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)
