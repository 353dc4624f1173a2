"""Engine factory, sessions and the UTC datetime column type."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

# Long enough to ride out a concurrent month close; short write transactions keep waits rare.
SQLITE_BUSY_TIMEOUT_MS = 15_000
_IMMEDIATE = "partypoints_begin_immediate"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def make_engine(database_url: str, *, pool_size: int = 40) -> Engine:
    """Build the engine for SQLite (WAL, busy timeout, foreign keys) or PostgreSQL (psycopg 3)."""
    url = make_url(database_url)
    # A request may hold a read session and open a short write session inside it: with as many
    # overflow connections as pooled ones, every server thread can hold two and none waits for
    # a connection another waiting thread holds.
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url, pool_size=pool_size)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def _sqlite_engine(database_url: str, *, pool_size: int) -> Engine:
    url = make_url(database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    memory = url.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **({"poolclass": NullPool} if memory else
           {"pool_size": pool_size, "max_overflow": pool_size}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE can be issued below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer that starts deferred and upgrades later can fail with SQLITE_BUSY at once;
        # writers take the lock up front instead, readers stay concurrent under WAL.
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for one short write transaction: committed on success, rolled back on error.

    Objects stay readable after the commit (as they were then), so callers can report on them.
    """
    sqlite = engine.dialect.name == "sqlite"
    # Only SQLite reads the option (BEGIN IMMEDIATE); making the option engine costs every call.
    bind = engine.execution_options(**{_IMMEDIATE: True}) if sqlite else engine
    # SQLite has one writer at a time; threads of this process queue on a lock (in order, no
    # sleeping) instead of on SQLite's busy handler, whose growing sleeps make the long tail.
    turn = _sqlite_write_lock(engine) if sqlite else nullcontext()
    with turn, Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


_write_locks: dict[int, threading.RLock] = {}
_write_locks_guard = threading.Lock()


def _sqlite_write_lock(engine: Engine) -> threading.RLock:
    with _write_locks_guard:
        return _write_locks.setdefault(id(engine.pool), threading.RLock())


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading."""
    with Session(engine) as session:
        yield session
