"""Bindings between organisations and the chat groups the bot lives in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class Platform(StrEnum):
    """Chat platforms the bot speaks; `simulator` is the local browser chat."""

    DINGTALK = "dingtalk"
    WECOM = "wecom"
    SIMULATOR = "simulator"


class ChatGroup(SQLModel, table=True):
    """A group chat bound to an organisation, with an optional robot webhook for posting."""

    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: Platform = Field(sa_type=String(20), nullable=False)
    chat_id: str = Field(sa_type=String(128), nullable=False)
    name: str = Field(sa_type=String(100), nullable=False)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    robot_webhook: str | None = Field(default=None, sa_type=String(500))
    robot_secret: str | None = Field(default=None, sa_type=String(200))
    created_at: datetime = created_at_field()
