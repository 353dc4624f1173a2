"""The party organisation tree: committee → general branch → branch → group."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class OrgKind(StrEnum):
    """Level of an organisation in the tree."""

    COMMITTEE = "committee"
    GENERAL_BRANCH = "general_branch"
    BRANCH = "branch"
    GROUP = "group"

    @property
    def label(self) -> str:
        """The Chinese name of the level."""
        return ORG_KIND_LABELS[self]


ORG_KIND_LABELS = {
    OrgKind.COMMITTEE: "党委",
    OrgKind.GENERAL_BRANCH: "党总支",
    OrgKind.BRANCH: "党支部",
    OrgKind.GROUP: "党小组",
}


class BranchCategory(StrEnum):
    """Branch category of the 5521 model; chooses the special indicators that apply."""

    PRODUCTION = "生产类"
    AUXILIARY = "辅助类"
    ADMINISTRATION = "综合管理类"
    MARKETING = "市场经营类"
    RESTRUCTURED = "非公改制类"


class Organization(SQLModel, table=True):
    """One node of the tree; `path` holds the ancestor ids for subtree queries."""

    __tablename__ = "organization"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(100), nullable=False)
    kind: OrgKind = Field(sa_type=String(20), nullable=False)
    category: BranchCategory | None = Field(default=None, sa_type=String(20))
    parent_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    # "/1/4/9/": this node and its ancestors, so a subtree is one LIKE on an index.
    path: str = Field(default="", sa_type=String(255), nullable=False, index=True)
    created_at: datetime = created_at_field()
