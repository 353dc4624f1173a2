"""Numbers the database cannot hold, NaN in JSON and broken links: a clear 4xx, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.config import Settings
from app.db import write_session
from app.main import create_app
from miniapp_api.errors import BAD_LINK, OUT_OF_RANGE
from tests.factories import build_org

# Past PostgreSQL's integer and past what SQLite's driver can bind: both databases refuse it.
HUGE = 2**63


@pytest.fixture
def client(db: Engine, settings_env: Settings) -> Iterator[TestClient]:
    """A client logged in as an ordinary member."""
    with write_session(db) as s:
        member = build_org(s, members=1).everyone()[0].id
    with TestClient(create_app(settings_env), follow_redirects=False) as client:
        assert client.post("/api/v1/auth/dev", json={"person_id": member}).status_code == 200
        yield client


@pytest.mark.parametrize("path", [f"/api/v1/activities/{HUGE}", f"/api/v1/declarations/{HUGE}",
                                  f"/api/v1/evaluation/spot-checks/{HUGE}"])
def test_an_id_past_the_databases_range_is_a_400_in_chinese(client, path, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.get(path)
    assert response.status_code == 400 and response.json() == {"detail": OUT_OF_RANGE}
    assert "the database refused a value" in caplog.text


def test_the_chat_simulator_refuses_an_unknown_huge_person_id(client):
    response = client.post("/dev/chat/messages", json={"person_id": HUGE, "text": "/帮助"})
    assert response.status_code == 400 and response.json() == {"detail": OUT_OF_RANGE}


def test_nan_in_a_json_body_is_a_422_not_a_500(client):
    response = client.post("/api/v1/leave-requests", content=b'{"activity_id": NaN}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert any(e["input"] == "nan" for e in response.json()["detail"]
               if isinstance(e.get("input"), str))


def test_a_page_with_a_broken_or_impossible_id_explains_itself(client):
    broken = client.get("/h5/activities/abc")
    assert broken.status_code == 400 and "text/html" in broken.headers["content-type"]
    assert BAD_LINK in broken.text
    huge = client.get(f"/h5/activities/{HUGE}")
    assert huge.status_code == 400 and OUT_OF_RANGE in huge.text


def test_a_scanned_code_with_an_impossible_activity_still_shows_the_check_in_page(client):
    response = client.get("/h5/checkin", params={"t": f"{HUGE}.forged"})
    assert response.status_code == 200 and "扫码签到" in response.text


@pytest.mark.parametrize("period", ["0000-01", "9999-12", "2026-13"])
def test_a_month_no_calendar_has_is_refused_by_the_points_api(client, period):
    response = client.get("/api/v1/me/points", params={"period": period})
    assert response.status_code == 400 and "看不懂" in response.json()["detail"]
