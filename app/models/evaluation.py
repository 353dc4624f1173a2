"""The monthly evaluation: member and branch months, their transitions, objections, declarations
with evidence files, and spot checks of approved declarations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.domain.evaluation import MonthState
from app.models.base import created_at_field, utc_field
from app.models.points import POINTS


class MemberMonth(SQLModel, table=True):
    """A member's month under evaluation: the self score, the assessed score, publication."""

    __tablename__ = "member_month"
    __table_args__ = (
        UniqueConstraint("person_id", "period"),
        Index("ix_member_month_branch_period", "branch_id", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    # The branch the member counted in when the month was opened.
    branch_id: int = Field(foreign_key="organization.id")
    period: str = Field(sa_type=String(7), nullable=False)
    state: MonthState = Field(default=MonthState.open, sa_type=String(20), nullable=False)
    # Scores per top-level dimension as text ("12.50"), by dimension code.
    self_scores: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    self_total: Decimal | None = Field(default=None, sa_type=POINTS)
    self_note: str = Field(default="", sa_type=Text, nullable=False)
    self_confirmed_at: datetime | None = utc_field()
    # Confirmed after the deadline, or never confirmed before the secretary scored.
    self_late: bool = Field(default=False, nullable=False)
    assessed_scores: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    assessed_total: Decimal | None = Field(default=None, sa_type=POINTS)
    # Units of assessment indicators the score needs, by indicator code: recorded on publication.
    assessment_units: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    assessed_reason: str = Field(default="", sa_type=Text, nullable=False)
    assessed_by_id: int | None = Field(default=None, foreign_key="person.id")
    assessed_at: datetime | None = utc_field()
    published_at: datetime | None = utc_field()
    closed_at: datetime | None = utc_field()
    created_at: datetime = created_at_field()


class BranchMonth(SQLModel, table=True):
    """A branch's month: locked and published by the committee, then closed."""

    __tablename__ = "branch_month"
    __table_args__ = (UniqueConstraint("branch_id", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="organization.id")
    period: str = Field(sa_type=String(7), nullable=False)
    published_at: datetime | None = utc_field()
    published_by_id: int | None = Field(default=None, foreign_key="person.id")
    objection_deadline: datetime | None = utc_field()
    closed_at: datetime | None = utc_field()
    created_at: datetime = created_at_field()


class EvaluationTransition(SQLModel, table=True):
    """One move of a member's or a branch's month: who, when, from, to, why. Never changed."""

    __tablename__ = "evaluation_transition"

    id: int | None = Field(default=None, primary_key=True)
    member_month_id: int | None = Field(default=None, foreign_key="member_month.id", index=True)
    branch_month_id: int | None = Field(default=None, foreign_key="branch_month.id", index=True)
    action: str = Field(sa_type=String(20), nullable=False)
    from_state: str = Field(sa_type=String(20), nullable=False)
    to_state: str = Field(sa_type=String(20), nullable=False)
    reason: str = Field(default="", sa_type=Text, nullable=False)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    actor_label: str = Field(sa_type=String(100), nullable=False)
    at: datetime = created_at_field()


class ObjectionStatus(StrEnum):
    """Where an objection (异议) stands."""

    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class Objection(SQLModel, table=True):
    """A member's objection to their published month, and its answer."""

    __tablename__ = "objection"

    id: int | None = Field(default=None, primary_key=True)
    member_month_id: int = Field(foreign_key="member_month.id", index=True)
    raised_by_id: int = Field(foreign_key="person.id")
    reason: str = Field(sa_type=Text, nullable=False)
    raised_at: datetime = created_at_field()
    status: ObjectionStatus = Field(default=ObjectionStatus.OPEN, sa_type=String(10),
                                    nullable=False)
    answer: str = Field(default="", sa_type=Text, nullable=False)
    answered_by_id: int | None = Field(default=None, foreign_key="person.id")
    answered_at: datetime | None = utc_field()
    # The correcting ledger entry of an upheld objection (entries are never edited).
    correction_entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")


class Declaration(SQLModel, table=True):
    """A member's declaration (申报): a draft gathering evidence, then a pending ledger entry."""

    __tablename__ = "declaration"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    indicator_code: str = Field(sa_type=String(64), nullable=False)
    description: str = Field(sa_type=Text, nullable=False)
    occurred_on: date = Field(nullable=False)
    period: str = Field(sa_type=String(7), nullable=False)
    created_at: datetime = created_at_field()
    # Set on submission: the ledger entry, reviewed by a designated reviewer.
    entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id", unique=True)
    submitted_at: datetime | None = utc_field()


class EvidenceFile(SQLModel, table=True):
    """A file backing a declaration, stored under the evidence directory by a random name."""

    __tablename__ = "evidence_file"

    id: int | None = Field(default=None, primary_key=True)
    declaration_id: int = Field(foreign_key="declaration.id", index=True)
    # Relative to the evidence directory; never the name the client sent.
    stored_name: str = Field(sa_type=String(200), nullable=False, unique=True)
    original_name: str = Field(sa_type=String(255), nullable=False)
    content_type: str = Field(sa_type=String(50), nullable=False)
    size: int = Field(nullable=False)
    sha256: str = Field(sa_type=String(64), nullable=False)
    uploaded_by_id: int = Field(foreign_key="person.id")
    uploaded_at: datetime = created_at_field()


class SpotCheck(SQLModel, table=True):
    """A random draw of approved declarations for re-review (抽查), recorded to be reproducible:
    `random.Random(seed).sample(population, len(drawn))` gives `drawn` again."""

    __tablename__ = "spot_check"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    period: str = Field(sa_type=String(7), nullable=False)
    seed: int = Field(nullable=False)
    size: int | None = None
    percent: Decimal | None = Field(default=None, sa_type=POINTS)
    # Ids of every entry that could be drawn, ascending, and the ids drawn, in draw order.
    population: list[Any] = Field(sa_type=JSON, nullable=False)
    drawn: list[Any] = Field(sa_type=JSON, nullable=False)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_by_label: str = Field(sa_type=String(100), nullable=False)
    created_at: datetime = created_at_field()


class SpotCheckItem(SQLModel, table=True):
    """One drawn entry and the outcome of its re-review; a failed one is reversed."""

    __tablename__ = "spot_check_item"
    __table_args__ = (UniqueConstraint("spot_check_id", "entry_id"),)

    id: int | None = Field(default=None, primary_key=True)
    spot_check_id: int = Field(foreign_key="spot_check.id", index=True)
    entry_id: int = Field(foreign_key="ledger_entry.id")
    passed: bool | None = None
    reason: str = Field(default="", sa_type=Text, nullable=False)
    checked_by_id: int | None = Field(default=None, foreign_key="person.id")
    checked_at: datetime | None = utc_field()
    reversal_entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
