"""The outbox: every post to a chat is a row first, sent after the transaction that caused it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, utc_field


class OutboxStatus(StrEnum):
    """Where a post stands: waiting, being sent by a worker, delivered, retrying, given up."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


class OutboxMessage(SQLModel, table=True):
    """One post to one chat target; (kind, period, target) is unique, so a post is made once."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("kind", "period", "target"),
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(40), nullable=False)
    # A month key for scheduled posts; an event key (e.g. "leave-12") for posts a change causes.
    period: str = Field(sa_type=String(60), nullable=False)
    platform: str = Field(sa_type=String(20), nullable=False)
    # "user:<platform userid>" or "chat:<platform chat id>".
    target: str = Field(sa_type=String(200), nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(10),
                                 nullable=False)
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime = created_at_field()
    last_error: str = Field(default="", sa_type=Text, nullable=False)
    created_at: datetime = created_at_field()
    sent_at: datetime | None = utc_field()
