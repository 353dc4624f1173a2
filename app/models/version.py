"""One counter that every audited write moves: a cheap, race-free version of the data."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class DataVersion(SQLModel, table=True):
    """The single row (id 1) whose `version` grows with every audited change."""

    __tablename__ = "data_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, nullable=False)
