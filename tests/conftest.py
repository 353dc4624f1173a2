"""Fixtures: one real database per test session (SQLite file, or PostgreSQL when asked)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app import migrate
from app.config import Settings, get_settings
from app.db import make_engine
from app.models import metadata


def _database_url(tmp_dir: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if os.environ.get("PARTYPOINTS_REQUIRE_POSTGRES") and not url.startswith("postgresql"):
        pytest.exit("PARTYPOINTS_REQUIRE_POSTGRES is set; TEST_DATABASE_URL must be PostgreSQL", 3)
    return url or f"sqlite:///{tmp_dir / 'test.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of the session's database."""
    return _database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The session's engine, migrated to head from an empty schema."""
    engine = make_engine(database_url, pool_size=5)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    stamp = os.environ.get("PARTYPOINTS_DB_STAMP")
    if stamp:
        Path(stamp).write_text(engine.dialect.name + "\n")
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The migrated engine, with every table emptied after the test."""
    yield engine
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def session(db: Engine) -> Iterator[Session]:
    """A plain session on the test database."""
    with Session(db) as session:
        yield session


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Settings]:
    """Process settings pointing at the test database (for CLI and app tests)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("APP_ENV", "dev")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
