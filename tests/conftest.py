"""Fixtures: a real, migrated database per test (SQLite copies, or PostgreSQL when asked)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app import migrate
from app.config import Settings, get_settings
from app.db import make_engine
from app.main import create_app
from app.models import metadata
from app.services.reports import clear_live_boards


def pytest_configure(config: pytest.Config) -> None:
    """No app built by a test runs the outbox worker or scheduler unless the test asks for it:
    tests deliver and run jobs themselves, deterministically."""
    os.environ["EMBEDDED_WORKER"] = "false"


def _postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if os.environ.get("PARTYPOINTS_REQUIRE_POSTGRES") and not url.startswith("postgresql"):
        pytest.exit("PARTYPOINTS_REQUIRE_POSTGRES is set; TEST_DATABASE_URL must be PostgreSQL", 3)
    return url or None


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The session's template database, migrated to head from nothing."""
    url = _postgres_url() or f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.db'}"
    engine = make_engine(url, pool_size=5)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    stamp = os.environ.get("PARTYPOINTS_DB_STAMP")
    if stamp:
        Path(stamp).write_text(engine.dialect.name + "\n")
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of the test's own: a copy of the template, or PostgreSQL emptied after.

    Append-only tables refuse DELETE, so SQLite tests get a fresh file rather than a cleanup;
    PostgreSQL's TRUNCATE does not fire row triggers.
    """
    clear_live_boards()
    if engine.dialect.name == "postgresql":
        yield engine
        # data_version keeps its one row: it only ever counts up.
        tables = ", ".join(t.name for t in metadata.sorted_tables if t.name != "data_version")
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return
    path = tmp_path / "test.db"
    shutil.copyfile(str(engine.url.database), path)
    own = make_engine(f"sqlite:///{path}")
    yield own
    own.dispose()


@pytest.fixture
def db_url(db: Engine) -> str:
    """URL of the test's database."""
    return db.url.render_as_string(hide_password=False)


@pytest.fixture
def session(db: Engine) -> Iterator[Session]:
    """A plain session on the test database."""
    with Session(db) as session:
        yield session


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[Settings]:
    """Process settings pointing at the test database (for CLI and app tests)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("APP_ENV", "dev")
    # Tests drive the outbox and attendance jobs themselves, deterministically.
    monkeypatch.setenv("EMBEDDED_WORKER", "false")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def live_server(settings_env: Settings) -> Iterator[str]:
    """The app on the test's database, served by uvicorn in a thread as `make run` serves it
    (outbox worker and scheduler inside); yields its base URL."""
    app = create_app(settings_env.model_copy(update={"embedded_worker": True}))
    # Bind first and hand uvicorn the socket, so no other process can take the port in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"live-server-{port}", daemon=True
    )
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, server, thread)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # a request that never ends: stop waiting for it
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
        if thread.is_alive():
            pytest.fail(f"live server on {base} did not shut down within 15 s")


def _wait_until_healthy(base: str, server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 15
    last: object = "no answer"
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail(f"live server on {base} exited during startup (see the captured log)")
        if server.started:
            try:
                response = httpx.get(f"{base}/healthz", timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
        time.sleep(0.05)
    pytest.fail(f"live server on {base} did not answer /healthz within 15 s: {last}")
