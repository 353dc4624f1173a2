"""Points: published scheme versions, the append-only ledger, reviews, and frozen month results."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Numeric, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field

POINTS = Numeric(10, 2)


class EntrySource(StrEnum):
    """Where an entry came from."""

    AUTOMATIC = "automatic"  # attendance, leave, on-time self-evaluation
    DECLARED = "declared"  # 申报 by the member, reviewed by a designated reviewer
    ASSESSED = "assessed"  # scored by the secretary or committee
    ADJUSTMENT = "adjustment"  # an administrator's correction or reversal, with a reason


class EntryStatus(StrEnum):
    """Whether an entry counts."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SchemeVersion(SQLModel, table=True):
    """A published version of an organisation's points scheme, in force from a month's first day."""

    __tablename__ = "scheme_version"
    __table_args__ = (UniqueConstraint("organization_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    version: int = Field(nullable=False)
    code: str = Field(sa_type=String(64), nullable=False)
    name: str = Field(sa_type=String(200), nullable=False)
    effective_from: date = Field(nullable=False)
    content: str = Field(sa_type=Text, nullable=False)
    fingerprint: str = Field(sa_type=String(64), nullable=False)
    published_by: str = Field(sa_type=String(100), nullable=False)
    published_at: datetime = created_at_field()


class LedgerEntry(SQLModel, table=True):
    """One point change. Never updated or deleted: a correction is a reversing entry."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        Index("ix_ledger_entry_period_person", "period", "person_id"),
        Index("ix_ledger_entry_period_org", "period", "organization_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    # The member's organisation when the entry was made, so boards survive transfers.
    organization_id: int = Field(foreign_key="organization.id")
    scheme_version_id: int = Field(foreign_key="scheme_version.id")
    indicator_code: str = Field(sa_type=String(64), nullable=False)
    count: int = Field(default=1, nullable=False)
    points: Decimal = Field(sa_type=POINTS, nullable=False)
    occurred_on: date = Field(nullable=False)
    period: str = Field(sa_type=String(7), nullable=False)
    source: EntrySource = Field(sa_type=String(20), nullable=False)
    # The status at creation; a pending entry is decided by one EntryReview row.
    status: EntryStatus = Field(sa_type=String(20), nullable=False)
    reason: str = Field(sa_type=Text, nullable=False)
    evidence: list[Any] | None = Field(default=None, sa_type=JSON)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_by_label: str = Field(sa_type=String(100), nullable=False)
    created_at: datetime = created_at_field()
    reversal_of_id: int | None = Field(default=None, foreign_key="ledger_entry.id", unique=True)


class EntryReview(SQLModel, table=True):
    """The one decision on a pending entry."""

    __tablename__ = "entry_review"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="ledger_entry.id", unique=True)
    decision: EntryStatus = Field(sa_type=String(20), nullable=False)
    reviewer_id: int | None = Field(default=None, foreign_key="person.id")
    reviewer_label: str = Field(sa_type=String(100), nullable=False)
    reason: str = Field(default="", sa_type=Text, nullable=False)
    reviewed_at: datetime = created_at_field()


class PeriodClose(SQLModel, table=True):
    """A month closed for an organisation's subtree: its results are frozen."""

    __tablename__ = "period_close"
    __table_args__ = (UniqueConstraint("organization_id", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id")
    period: str = Field(sa_type=String(7), nullable=False)
    scheme_version_id: int = Field(foreign_key="scheme_version.id")
    members: int = Field(nullable=False)
    closed_by: str = Field(sa_type=String(100), nullable=False)
    closed_at: datetime = created_at_field()


class MonthResult(SQLModel, table=True):
    """A member's frozen month: scores, grade and ranks as they were at close."""

    __tablename__ = "month_result"
    __table_args__ = (
        UniqueConstraint("period", "person_id"),
        Index("ix_month_result_period_branch", "period", "branch_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period_close_id: int = Field(foreign_key="period_close.id")
    period: str = Field(sa_type=String(7), nullable=False)
    person_id: int = Field(foreign_key="person.id")
    # The branch the member belonged to at close (a 党小组 member counts in its branch).
    branch_id: int = Field(foreign_key="organization.id")
    base: Decimal = Field(sa_type=POINTS, nullable=False)
    bonus: Decimal = Field(sa_type=POINTS, nullable=False)
    total: Decimal | None = Field(default=None, sa_type=POINTS)
    vetoed: bool = Field(nullable=False)
    rank_in_branch: int | None = None
    rank_in_committee: int | None = None
    dimensions: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class MonthIndicatorTotal(SQLModel, table=True):
    """Counted points of a yearly-capped indicator in a closed month (feeds later months' caps)."""

    __tablename__ = "month_indicator_total"
    __table_args__ = (UniqueConstraint("period", "person_id", "indicator_code"),)

    id: int | None = Field(default=None, primary_key=True)
    period_close_id: int = Field(foreign_key="period_close.id")
    period: str = Field(sa_type=String(7), nullable=False)
    person_id: int = Field(foreign_key="person.id", index=True)
    indicator_code: str = Field(sa_type=String(64), nullable=False)
    counted: Decimal = Field(sa_type=POINTS, nullable=False)
