"""Shared metadata conventions and column helpers for every table."""

from __future__ import annotations

from typing import Any

from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow

# Set before any table is declared so that every constraint gets a stable, migratable name.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def created_at_field(**kwargs: Any) -> Any:
    """A non-null UTC timestamp column defaulting to now."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, **kwargs)


def utc_field(*, nullable: bool = True, **kwargs: Any) -> Any:
    """A UTC timestamp column."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, **kwargs)


__all__ = ["SQLModel", "created_at_field", "utc_field"]
