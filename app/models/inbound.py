"""Platform message ids already handled, so a redelivered message is answered once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class InboundMessage(SQLModel, table=True):
    """A message id seen from a platform; kept at least as long as platforms redeliver."""

    __tablename__ = "inbound_message"
    __table_args__ = (UniqueConstraint("platform", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(sa_type=String(20), nullable=False)
    message_id: str = Field(sa_type=String(200), nullable=False)
    received_at: datetime = created_at_field(index=True)
