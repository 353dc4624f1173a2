"""WeCom beyond the chat: boards into groups through the outbox (group robot, AI-bot long
connection), the limits, and H5 login that identifies a WeCom member at a QR check-in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.config import Settings
from app.db import utcnow, write_session
from app.domain.periods import month_key
from app.jobs.board import monthly_board
from app.main import add_wecom_delivery, create_app, outbox_worker
from app.models import ChatGroup, CheckIn, OutboxMessage, Platform
from app.render.board_png import find_cjk_font
from app.services import orgs
from app.services.activities import create_activity
from app.services.checkin import current_token
from app.services.people import find_person
from bot.fakes.wecom import FakeWeCom
from bot.outbox_worker import OutboxWorker, Sender
from bot.runtime import wecom_channel
from bot.wecom.aibot_ws import AibotConnection
from tests.chat import conformance as suite
from tests.chat import wecom_drivers as wd


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeCom]:
    """One fake WeCom for the module."""
    with FakeWeCom.running(**wd.fake_options()) as fake:
        yield fake


@pytest.fixture
def settings(fake, db, db_url) -> Settings:
    """The demo organisation on WeCom; the app's settings point at the fake."""
    fake.reset()
    suite.seed_world(db, datetime.now(UTC))
    wd.move_people_to_wecom(db, fake)
    return Settings(_env_file=None, database_url=db_url).model_copy(
        update=wd.settings_update(fake))


def _group(db, *, chat_id: str, webhook: str | None = None) -> None:
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        s.add(ChatGroup(platform=Platform.WECOM, chat_id=chat_id, name="支部群",
                        organization_id=branch.id, robot_webhook=webhook))


def _worker(db, settings: Settings, http: httpx.Client,
            aibot: AibotConnection | None = None) -> OutboxWorker:
    channel = wecom_channel(settings, http)
    assert channel is not None
    channel.deliverer.aibot = aibot
    senders: dict[str, Sender] = {}
    robots: dict = {}
    add_wecom_delivery(settings, db, channel, senders, robots)
    return outbox_worker(settings, engine=db, senders=senders, robot_senders=robots)


def _board(db, settings: Settings) -> None:
    period = month_key(utcnow(), settings.tz)
    # The demo's simulator groups get theirs too; only the WeCom group's row matters here.
    assert monthly_board(engine=db, settings=settings, now=utcnow(), period=period).queued >= 1


def _wecom_row(s) -> OutboxMessage:
    return s.exec(select(OutboxMessage).where(OutboxMessage.platform == "wecom")).one()


def test_the_monthly_board_reaches_a_wecom_group_through_its_robot(fake, settings, db):
    _group(db, chat_id="wrg-robot", webhook=fake.add_webhook("board-robot"))
    _board(db, settings)
    with httpx.Client() as http:
        assert _worker(db, settings, http).run_once() == 1
    posts = [m for m in fake.sent if m.kind == "webhook" and m.target == "board-robot"]
    markdown = [m for m in posts if m.msgtype == "markdown"]
    assert markdown and suite.BRANCH in markdown[0].text and "积分榜" in markdown[0].text
    # WeCom markdown shows no images: the picture goes as an image message of its own.
    assert "![" not in markdown[0].text
    if find_cjk_font(settings.board_font_path) is not None:
        assert [m.msgtype for m in posts] == ["image", "markdown"]


@pytest.mark.skipif(find_cjk_font("") is None, reason="no CJK font to draw the board picture")
def test_the_board_picture_is_sent_as_an_image_with_its_md5(fake, settings, db):
    _group(db, chat_id="wrg-picture", webhook=fake.add_webhook("picture-robot"))
    _board(db, settings)
    with httpx.Client() as http:
        _worker(db, settings, http).run_once()
    (image,) = [m for m in fake.sent if m.msgtype == "image"]
    assert image.body["image"]["md5"]  # the fake checked it against the bytes


def test_a_robot_over_its_limit_is_retried_not_dead(fake, settings, db):
    webhook = fake.add_webhook("busy-robot")
    for n in range(20):  # someone else used up this robot's minute
        httpx.post(webhook, json={"msgtype": "text", "text": {"content": f"{n}"}})
    _group(db, chat_id="wrg-busy", webhook=webhook)
    _board(db, settings)
    with httpx.Client() as http:
        assert _worker(db, settings, http).run_once() == 0
    with write_session(db) as s:
        row = _wecom_row(s)
        assert row.status == "failed" and "45009" in row.last_error
        assert row.next_attempt_at > utcnow()
    fake.advance(61)
    with write_session(db) as s:
        row = _wecom_row(s)
        row.next_attempt_at = utcnow()
    with httpx.Client() as http:
        assert _worker(db, settings, http).run_once() == 1


def test_an_ai_bot_group_gets_its_board_over_the_long_connection(fake, settings, db):
    _group(db, chat_id="wrg-aibot")
    _board(db, settings)
    connection = AibotConnection(url=fake.ws_url, bot_id=wd.AIBOT_ID, secret=wd.AIBOT_SECRET,
                                 on_message=lambda req_id, body: None)
    thread = threading.Thread(target=connection.run_forever, daemon=True)
    thread.start()
    try:
        assert connection.wait_connected(10)
        with httpx.Client() as http:
            assert _worker(db, settings, http, aibot=connection).run_once() == 1
    finally:
        connection.stop()
        thread.join(timeout=5)
    (post,) = [m for m in fake.sent if m.kind == "aibot_send"]
    assert post.target == "wrg-aibot" and suite.BRANCH in post.text


def test_a_group_with_no_way_in_is_dead_with_the_reason(fake, settings, db):
    _group(db, chat_id="wrg-nowhere")
    _board(db, settings)
    with httpx.Client() as http:
        _worker(db, settings, http).run_once()
    with write_session(db) as s:
        row = _wecom_row(s)
        assert row.status == "dead" and "no-route" in row.last_error


def test_wecom_login_identifies_the_member_at_a_qr_check_in(fake, settings, db):
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        meeting = create_activity(session=s, branch=branch, kind="主题党日", title="现场签到",
                                  starts_at=utcnow() + timedelta(minutes=5))
        member_id = find_person(session=s, key=suite.MEMBER).id
    token = current_token(secret=settings.secret_key.get_secret_value(),
                          activity_id=meeting.id, now=utcnow(),
                          rotate_s=settings.checkin_qr_rotate_s)
    with TestClient(create_app(settings), base_url=settings.public_base_url) as client:
        start = client.get("/api/v1/auth/wecom/start", params={"next": "/h5/activities"},
                           follow_redirects=False)
        assert start.status_code == 302
        fake.login_as(suite.MEMBER)  # who is signed in to WeCom on this phone
        authorize = httpx.get(start.headers["location"].split("#")[0], follow_redirects=False)
        assert authorize.status_code == 302
        back = urlsplit(authorize.headers["location"])
        assert back.path == "/api/v1/auth/wecom/callback"
        landed = client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert landed.status_code == 302 and landed.headers["location"] == "/h5/activities"
        answer = client.post("/api/v1/checkins", json={"token": token})
        assert answer.status_code == 200, answer.text
        # The code was single-use: replaying the redirect does not log anyone in again.
        replay = client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert replay.status_code != 302 or replay.headers["location"] != "/h5/activities"
    with write_session(db) as s:
        (check_in,) = s.exec(select(CheckIn).where(CheckIn.activity_id == meeting.id)).all()
        assert check_in.person_id == member_id
