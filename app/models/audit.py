"""The audit log: who changed what, when, with the values before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class AuditLog(SQLModel, table=True):
    """One recorded change; never updated or deleted."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_at_field(index=True)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    # Who acted when no person did: "cli", "system", "roster-import"…
    actor_label: str = Field(sa_type=String(100), nullable=False)
    action: str = Field(sa_type=String(50), nullable=False)
    entity: str = Field(sa_type=String(50), nullable=False)
    entity_id: str | None = Field(default=None, sa_type=String(64), index=True)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)
