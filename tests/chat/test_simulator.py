"""The development chat simulator: its page, its outbox, and its absence in production."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.chat import conformance as suite


def test_page_people_and_outbox(db, db_url):
    ids = suite.seed_world(db, datetime.now(UTC))
    # The dev server's own outbox worker posts the leave card, woken as soon as it is queued.
    settings = Settings(_env_file=None, database_url=db_url, embedded_worker=True)
    with TestClient(create_app(settings)) as client:
        page = client.get("/dev/chat")
        assert page.status_code == 200 and "聊天模拟器" in page.text
        listing = client.get("/dev/chat/people").json()
        member = next(p for p in listing["people"] if p["userid"] == suite.MEMBER)
        assert {g["chat_id"] for g in listing["groups"]} >= {f"sim-{ids['branch']}"}
        start = client.get("/dev/chat/feed").json()["next"]
        client.post("/dev/chat/messages", json={
            "person_id": member["id"], "text": f"/请假 {ids['activity']} 病假 发烧",
            "chat_id": f"sim-{ids['branch']}"})
        feed = _wait_for_posts(client, start)
        (post,) = feed["posts"]
        assert post["user_id"] == suite.SECRETARY and "发烧" in post["reply"]["text"]
        assert [b["label"] for b in post["reply"]["buttons"]] == ["批准", "驳回"]
        assert client.get("/dev/chat/feed", params={"since": feed["next"]}).json()["posts"] == []
        unknown = client.post("/dev/chat/messages", json={"person_id": 99999, "text": "/帮助"})
        assert unknown.status_code == 404 and "找不到" in unknown.json()["detail"]


def test_no_simulator_in_production(db_url):
    settings = Settings(_env_file=None, database_url=db_url, app_env="prod",
                        secret_key="a-real-secret-for-this-test")
    with TestClient(create_app(settings)) as client:
        assert client.get("/dev/chat").status_code == 404
        assert client.post("/dev/chat/messages", json={}).status_code == 404


def _wait_for_posts(client: TestClient, since: int) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 5
    while True:
        feed = client.get("/dev/chat/feed", params={"since": since}).json()
        if feed["posts"] or time.monotonic() > deadline:
            return feed
        time.sleep(0.02)
