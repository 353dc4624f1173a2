"""People on the roster and the roles they hold over organisation subtrees."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.domain.vocab import MemberType, Role
from app.models.base import created_at_field


class Person(SQLModel, table=True):
    """A member, a secretary or a non-member (群众) known to the system."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(50), nullable=False)
    phone: str | None = Field(default=None, sa_type=String(20), unique=True)
    dingtalk_userid: str | None = Field(default=None, sa_type=String(64), unique=True)
    wecom_userid: str | None = Field(default=None, sa_type=String(64), unique=True)
    member_type: MemberType = Field(sa_type=String(20), nullable=False)
    joined_party_on: date | None = None
    organization_id: int = Field(foreign_key="organization.id", index=True)
    active: bool = Field(default=True, nullable=False)
    created_at: datetime = created_at_field()


class RoleAssignment(SQLModel, table=True):
    """A role held by a person over the subtree rooted at an organisation."""

    __tablename__ = "role_assignment"
    __table_args__ = (UniqueConstraint("person_id", "role", "organization_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: Role = Field(sa_type=String(40), nullable=False)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    created_at: datetime = created_at_field()
