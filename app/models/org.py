"""The party organisation tree: committee → general branch → branch → group."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.domain.vocab import BranchCategory, OrgKind
from app.models.base import created_at_field


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
