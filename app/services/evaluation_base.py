"""Plumbing shared by the evaluation services: the scheme of a month, member and branch month
rows, the transition log, the ledger basis of a member's month, and who is in a branch."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, select

from app.domain.assessment import Basis
from app.domain.evaluation import Action, EvaluationRefused, MonthState
from app.domain.periods import parse_month
from app.domain.refusals import Refusal
from app.domain.scheme import Scheme
from app.domain.scoring import counted_to_date
from app.models import (
    BranchMonth,
    EvaluationTransition,
    MemberMonth,
    MemberType,
    Organization,
    Person,
)
from app.services import audit, schemes
from app.services.ledger import Actor, approved_facts
from app.services.reports import branch_of, months_in_order

SYSTEM = Actor("system")


def actor_of(person: Person) -> Actor:
    """A roster person as the actor of ledger and evaluation records."""
    return Actor(person.name, person.id)


def scheme_for(*, session: Session, org: Organization, period: str) -> Scheme:
    """The scheme in force for `period` at `org`, or a refusal."""
    parse_month(period)
    version = schemes.version_for(session=session, org=org, period=period)
    if version is None:
        raise EvaluationRefused(f"{period} 没有生效的积分方案")
    return schemes.scheme_of(version)


def last_day(period: str) -> date:
    """The last day of the month: what evaluation entries of the month are dated."""
    year, month = parse_month(period)
    return date(year, month, calendar.monthrange(year, month)[1])


def score_texts(scores: dict[str, Decimal]) -> dict[str, str]:
    """Scores as stored in JSON: exact text with two places."""
    return {code: f"{value:.2f}" for code, value in scores.items()}


def score_values(stored: dict[str, Any] | None) -> dict[str, Decimal]:
    """Scores back from JSON."""
    return {code: Decimal(value) for code, value in (stored or {}).items()}


def _insert_missing(session: Session, model: type[SQLModel], keys: list[str],
                    values: dict[str, Any]) -> None:
    # Two first actions on the same month may race: one inserts, the other finds its row.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=keys))


def find_month(*, session: Session, person_id: int, period: str,
               lock: bool = False) -> MemberMonth | None:
    """A member's month row if it exists; with `lock`, locked for update (on PostgreSQL)."""
    query = select(MemberMonth).where(MemberMonth.person_id == person_id,
                                      MemberMonth.period == period)
    return session.exec(query.with_for_update() if lock else query).first()


def month_row(*, session: Session, member: Person, branch: Organization, period: str,
              now: datetime) -> MemberMonth:
    """The member's month, opened in `branch` the first time anyone acts on it."""
    _insert_missing(session, MemberMonth, ["person_id", "period"],
                    {"person_id": member.id, "branch_id": branch.id, "period": period,
                     "state": MonthState.open.value, "self_note": "", "self_late": False,
                     "assessed_reason": "", "created_at": now})
    month = find_month(session=session, person_id=member.id or 0, period=period, lock=True)
    assert month is not None
    return month


def find_branch_month(*, session: Session, branch: Organization, period: str
                      ) -> BranchMonth | None:
    """A branch's month row, locked for update (on PostgreSQL) when it exists."""
    return session.exec(
        select(BranchMonth)
        .where(BranchMonth.branch_id == branch.id, BranchMonth.period == period)
        .with_for_update()
    ).first()


def branch_month_row(*, session: Session, branch: Organization, period: str,
                     now: datetime) -> BranchMonth:
    """The branch's month, made the first time the committee acts on it."""
    _insert_missing(session, BranchMonth, ["branch_id", "period"],
                    {"branch_id": branch.id, "period": period, "created_at": now})
    found = find_branch_month(session=session, branch=branch, period=period)
    assert found is not None
    return found


def move(*, session: Session, month: MemberMonth, action: Action, to: MonthState, by: Actor,
         reason: str, now: datetime) -> None:
    """Move a member's month and record who, when, from, to and why, in the same transaction."""
    before = MonthState(month.state)
    month.state = to
    session.add(EvaluationTransition(member_month_id=month.id, action=action,
                                     from_state=before, to_state=to, reason=reason,
                                     actor_id=by.person_id, actor_label=by.label, at=now))
    audit.record(session=session, actor_id=by.person_id, actor_label=by.label,
                 action=action.value, entity="member_month", entity_id=month.id,
                 before={"state": before}, after={"state": to, "reason": reason})


def move_branch(*, session: Session, branch_month: BranchMonth, action: Action,
                states: tuple[str, str], by: Actor, reason: str, now: datetime) -> None:
    """Record a move of a branch's month (publication, close) in the same transaction."""
    before, after = states
    session.add(EvaluationTransition(branch_month_id=branch_month.id, action=action,
                                     from_state=before, to_state=after, reason=reason,
                                     actor_id=by.person_id, actor_label=by.label, at=now))
    audit.record(session=session, actor_id=by.person_id, actor_label=by.label,
                 action=action.value, entity="branch_month", entity_id=branch_month.id,
                 before={"state": before}, after={"state": after, "reason": reason})


def history(*, session: Session, month: MemberMonth) -> list[EvaluationTransition]:
    """Every move of a member's month, oldest first."""
    return list(session.exec(
        select(EvaluationTransition)
        .where(EvaluationTransition.member_month_id == month.id)
        .order_by(col(EvaluationTransition.id))
    ))


def basis_for(*, session: Session, branch: Organization, person_id: int, scheme: Scheme,
              period: str) -> Basis:
    """What the member's month is scored from, yearly caps carried as month close does."""
    year, month = parse_month(period)
    facts = approved_facts(session=session, person_ids=[person_id], periods=[period])
    year_to_date: dict[str, Decimal] = {}
    if any(i.cap_per_year is not None for i in scheme.indicators):
        earlier = months_in_order(session=session, org=branch, person_ids=[person_id],
                                  year=year, last=month - 1)
        year_to_date = counted_to_date(earlier[person_id].values())
    return Basis(scheme, tuple(facts.get((person_id, period), [])), last_day(period),
                 year_to_date)


def members_under(*, session: Session, org: Organization) -> list[tuple[Person, Organization]]:
    """Active party members of `org`'s subtree with the branch each is evaluated in."""
    people = session.exec(
        select(Person)
        .join(Organization, col(Organization.id) == Person.organization_id)
        .where(col(Organization.path).startswith(org.path), col(Person.active).is_(True),
               Person.member_type != MemberType.masses)
        .order_by(col(Person.id))
    ).all()
    return [(person, branch_of(session, person)) for person in people]


def branch_members(*, session: Session, branch: Organization) -> list[Person]:
    """Active party members evaluated in this branch."""
    return [p for p, unit in members_under(session=session, org=branch) if unit.id == branch.id]


def active_member(*, session: Session, person_id: int) -> Person:
    """An active party member by id, or a refusal."""
    person = session.get(Person, person_id)
    if person is None or not person.active or person.member_type == MemberType.masses:
        raise EvaluationRefused("找不到该党员，或该人员已停用", kind=Refusal.not_found)
    return person
