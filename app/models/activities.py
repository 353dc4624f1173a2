"""Organisational activities (组织生活) and leave requests for them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.domain.checkin import Outcome
from app.models.base import created_at_field, utc_field


class ActivityStatus(StrEnum):
    """Life cycle: planned → open (check-in) → closed → final (attendance scored); or cancelled."""

    PLANNED = "planned"
    OPEN = "open"
    CLOSED = "closed"
    FINAL = "final"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The Chinese name."""
        return {"planned": "未开始", "open": "签到中", "closed": "已结束", "final": "考勤已确认",
                "cancelled": "已取消"}[self.value]


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
    checkin_opens_at: datetime = utc_field(nullable=False)
    checkin_closes_at: datetime = utc_field(nullable=False)
    # Scanning more than this many minutes after the start counts as late.
    late_after_min: int = Field(default=10, nullable=False)
    leave_deadline_at: datetime = utc_field(nullable=False)
    allow_visitors: bool = Field(default=False, nullable=False)
    geo_lat: float | None = None
    geo_lng: float | None = None
    geo_radius_m: int | None = None
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = created_at_field()
    finalized_at: datetime | None = utc_field()


class ActivityBranch(SQLModel, table=True):
    """The branches an activity is for; the activity's own organisation is always one of them."""

    __tablename__ = "activity_branch"

    activity_id: int = Field(foreign_key="activity.id", primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", primary_key=True, index=True)


class AttendeeOverride(SQLModel, table=True):
    """A person added to (or taken off) the expected attendees the branches imply."""

    __tablename__ = "attendee_override"

    activity_id: int = Field(foreign_key="activity.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    expected: bool = Field(nullable=False)


class CheckInMethod(StrEnum):
    """How a check-in came about."""

    SCAN = "scan"
    MANUAL = "manual"


class CheckIn(SQLModel, table=True):
    """One person's presence at an activity: scanned, or marked by the secretary afterwards."""

    __tablename__ = "check_in"
    __table_args__ = (UniqueConstraint("activity_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    checked_in_at: datetime = utc_field(nullable=False)
    late: bool = Field(default=False, nullable=False)
    visitor: bool = Field(default=False, nullable=False)
    method: CheckInMethod = Field(default=CheckInMethod.SCAN, sa_type=String(10),
                                 nullable=False)
    platform: str = Field(default="", sa_type=String(20), nullable=False)
    distance_m: int | None = None
    marked_by_id: int | None = Field(default=None, foreign_key="person.id")
    reason: str = Field(default="", sa_type=Text, nullable=False)


class Attendance(SQLModel, table=True):
    """The final attendance of one expected attendee, written once when the activity is final."""

    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("activity_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    outcome: Outcome = Field(sa_type=String(10), nullable=False)
    # The ledger entries the outcome produced (ids), for the member's "why".
    entry_ids: list[int] = Field(default_factory=list, sa_type=JSON, nullable=False)
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
