"""The web application's probes and docs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_healthz_readyz_and_docs(db_url):
    with TestClient(create_app(Settings(_env_file=None, database_url=db_url))) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"
        assert client.get("/docs").status_code == 200
        assert "/readyz" in client.get("/openapi.json").json()["paths"]


def test_readyz_is_503_when_migrations_are_pending(tmp_path):
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "migrations_pending"


def test_readyz_is_503_when_the_database_is_unreachable():
    settings = Settings(_env_file=None, database_url="postgresql+psycopg://x@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


@pytest.mark.parametrize(("level", "logged"), [("WARNING", False), ("INFO", True)])
def test_log_level_governs_the_served_apps_access_log(db_url, tmp_path, level, logged):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).with_name("partypoints")), "serve", "--port", str(port)]
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_LEVEL": level, "APP_ENV": "dev"}
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not answer within 30 s"
            time.sleep(0.1)
        process.terminate()
        output = process.communicate(timeout=20)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert ('"GET /healthz HTTP/1.1" 200' in output) is logged, output
