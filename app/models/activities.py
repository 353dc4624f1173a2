"""Organisational activities (组织生活) and leave requests for them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, utc_field


class ActivityStatus(StrEnum):
    """Life cycle: planned → open (check-in) → closed → final (attendance scored)."""

    PLANNED = "planned"
    OPEN = "open"
    CLOSED = "closed"
    FINAL = "final"


class Activity(SQLModel, table=True):
    """A meeting or event of a branch: 主题党日, 三会一课, 组织生活会…"""

    __tablename__ = "activity"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    kind: str = Field(sa_type=String(20), nullable=False)
    title: str = Field(sa_type=String(200), nullable=False)
    starts_at: datetime = utc_field(nullable=False)
    ends_at: datetime = utc_field(nullable=False)
    place: str = Field(default="", sa_type=String(200), nullable=False)
    status: ActivityStatus = Field(default=ActivityStatus.PLANNED, sa_type=String(20),
                                   nullable=False)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = created_at_field()


class LeaveKind(StrEnum):
    """Kinds of leave; the scheme decides which are excused."""

    SICK = "sick"
    PERSONAL = "personal"
    OFFICIAL = "official"

    @property
    def label(self) -> str:
        """The Chinese name."""
        return {"sick": "病假", "personal": "事假", "official": "公假"}[self.value]


class LeaveStatus(StrEnum):
    """Where a leave request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        """The Chinese name."""
        return {"pending": "待审批", "approved": "已批准", "rejected": "已驳回"}[self.value]


class LeaveRequest(SQLModel, table=True):
    """A member's request to be excused from an activity, decided by the branch secretary."""

    __tablename__ = "leave_request"
    __table_args__ = (UniqueConstraint("activity_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    kind: LeaveKind = Field(sa_type=String(20), nullable=False)
    reason: str = Field(sa_type=Text, nullable=False)
    status: LeaveStatus = Field(default=LeaveStatus.PENDING, sa_type=String(20), nullable=False)
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = utc_field()
    decision_reason: str = Field(default="", sa_type=Text, nullable=False)
    created_at: datetime = created_at_field()
