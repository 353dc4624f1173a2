"""Every table, imported here so that metadata (and Alembic) see them all."""

from app.models.audit import AuditLog
from app.models.base import SQLModel
from app.models.chat import ChatGroup, Platform
from app.models.org import ORG_KIND_LABELS, BranchCategory, Organization, OrgKind
from app.models.people import ROLE_LABELS, MemberType, Person, Role, RoleAssignment

metadata = SQLModel.metadata

__all__ = [
    "ORG_KIND_LABELS",
    "ROLE_LABELS",
    "AuditLog",
    "BranchCategory",
    "ChatGroup",
    "MemberType",
    "OrgKind",
    "Organization",
    "Person",
    "Platform",
    "Role",
    "RoleAssignment",
    "metadata",
]
