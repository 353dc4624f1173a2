"""Every table, imported here so that metadata (and Alembic) see them all."""

from app.domain.vocab import BranchCategory, MemberType, OrgKind, Role
from app.models.activities import (
    Activity,
    ActivityBranch,
    ActivityStatus,
    Attendance,
    AttendeeOverride,
    CheckIn,
    CheckInMethod,
    LeaveKind,
    LeaveRequest,
    LeaveStatus,
)
from app.models.audit import AuditLog
from app.models.base import SQLModel
from app.models.chat import ChatGroup, Platform
from app.models.evaluation import (
    BranchMonth,
    Declaration,
    EvaluationTransition,
    EvidenceFile,
    MemberMonth,
    Objection,
    ObjectionStatus,
    SpotCheck,
    SpotCheckItem,
)
from app.models.inbound import InboundMessage
from app.models.org import Organization
from app.models.outbox import OutboxMessage, OutboxStatus
from app.models.people import Person, RoleAssignment
from app.models.points import (
    EntryReview,
    EntrySource,
    EntryStatus,
    LedgerEntry,
    MonthIndicatorTotal,
    MonthResult,
    PeriodClose,
    SchemeVersion,
)
from app.models.version import DataVersion

metadata = SQLModel.metadata

__all__ = [
    "Activity",
    "ActivityBranch",
    "ActivityStatus",
    "Attendance",
    "AttendeeOverride",
    "AuditLog",
    "BranchCategory",
    "BranchMonth",
    "ChatGroup",
    "CheckIn",
    "CheckInMethod",
    "DataVersion",
    "Declaration",
    "EntryReview",
    "EntrySource",
    "EntryStatus",
    "EvaluationTransition",
    "EvidenceFile",
    "InboundMessage",
    "LeaveKind",
    "LeaveRequest",
    "LeaveStatus",
    "LedgerEntry",
    "MemberMonth",
    "MemberType",
    "MonthIndicatorTotal",
    "MonthResult",
    "Objection",
    "ObjectionStatus",
    "OrgKind",
    "Organization",
    "OutboxMessage",
    "OutboxStatus",
    "PeriodClose",
    "Person",
    "Platform",
    "Role",
    "RoleAssignment",
    "SchemeVersion",
    "SpotCheck",
    "SpotCheckItem",
    "metadata",
]
