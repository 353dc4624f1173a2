"""Settings: defaults, validation, and one clear line for a bad configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_embedded_sqlite_database_and_shanghai(monkeypatch):
    for key in ("DATABASE_URL", "APP_ENV", "SECRET_KEY", "BUSINESS_TZ", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///./data/partypoints.db"
    assert settings.app_env == "dev"
    assert settings.business_tz == "Asia/Shanghai"
    assert str(settings.tz) == "Asia/Shanghai"


def test_prod_refuses_the_placeholder_secret():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, app_env="prod")
    assert Settings(_env_file=None, app_env="prod", secret_key="s3cr3t-" * 6).app_env == "prod"


@pytest.mark.parametrize("url", ["not a url", "mysql://root@localhost/x", "://"])
def test_malformed_database_url_is_rejected(url):
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, database_url=url)


def test_unknown_time_zone_is_rejected():
    with pytest.raises(ValidationError, match="BUSINESS_TZ"):
        Settings(_env_file=None, business_tz="Mars/Olympus")


def test_secret_is_not_shown_in_repr():
    settings = Settings(_env_file=None, secret_key="very-secret-value")
    assert "very-secret-value" not in repr(settings)


def test_bad_database_url_stops_the_cli_with_one_line_not_a_traceback(tmp_path):
    env = {**os.environ, "DATABASE_URL": "definitely not a url"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "db", "upgrade"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("配置错误") and "DATABASE_URL" in lines[0]
