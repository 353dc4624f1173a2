"""The monthly board reaches the simulator's group as a picture, served by our signed URL."""

from __future__ import annotations

import json

from playwright.sync_api import Page, Route, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.config import Settings
from app.db import utcnow
from app.jobs.board import monthly_board
from app.links import board_image_url
from app.models import ChatGroup, OutboxMessage
from app.services.demo import seed_demo, seed_demo_activity


def test_the_board_post_shows_its_picture(live_server: str, page: Page, db: Engine,
                                          settings_env: Settings) -> None:
    with Session(db) as session:
        seed_demo(session=session)
        seed_demo_activity(session=session, now=utcnow(), tz=settings_env.tz)
        session.commit()
    period = utcnow().astimezone(settings_env.tz).strftime("%Y-%m")
    monthly_board(engine=db, settings=settings_env, now=utcnow(), period=period)
    with Session(db) as session:
        row = session.exec(select(OutboxMessage).where(
            OutboxMessage.kind == "monthly-board")).first()
        assert row is not None
        group = session.exec(select(ChatGroup).where(
            ChatGroup.chat_id == row.target.partition(":")[2])).one()
        text = row.payload["text"]
    # The post as the worker hands it to the simulator, with the picture on this live server.
    here = board_image_url(settings_env, group.organization_id, period).replace(
        settings_env.public_base_url.rstrip("/"), live_server)
    assert "![积分榜](" in text
    post = {"at": "", "chat_id": group.chat_id, "user_id": None,
            "reply": {"text": text.split("![积分榜](")[0] + f"![积分榜]({here})",
                      "title": "积分榜", "buttons": [], "card_id": None}}

    def feed(route: Route) -> None:
        route.fulfill(content_type="application/json",
                      body=json.dumps({"next": 1, "posts": [post]}))

    page.route("**/dev/chat/feed*", feed)
    page.goto(f"{live_server}/dev/chat")
    picture = page.locator("#feed img[alt=积分榜]")
    expect(picture).to_be_visible(timeout=10_000)
    assert page.evaluate("img => img.naturalWidth", picture.element_handle()) >= 700
