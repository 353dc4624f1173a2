"""The conformance suite run through every channel driver available here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import Settings
from app.db import write_session
from app.main import create_app
from app.services import orgs
from bot.dingtalk.adapter import handle_bot_message, handle_card_click
from bot.dingtalk.stream import StreamClient
from bot.fakes.dingtalk import FakeDingTalk
from bot.fakes.wecom import FakeWeCom
from bot.runtime import build_dispatcher, dingtalk_stream
from bot.wecom.adapter import aibot_message_handler
from bot.wecom.aibot_ws import AibotConnection
from tests.chat import conformance as suite
from tests.chat import dingtalk_drivers as dd
from tests.chat import wecom_drivers as wd
from tests.chat.drivers import DispatcherDriver, SimulatorDriver


@pytest.fixture(scope="module")
def fake_dingtalk():
    """One fake DingTalk for the module, reset for every test."""
    with FakeDingTalk.running(client_id=dd.CLIENT_ID, client_secret=dd.SECRET,
                              robot_code=dd.CLIENT_ID) as fake:
        yield fake


@pytest.fixture(scope="module")
def fake_wecom():
    """One fake WeCom for the module, reset for every test."""
    with FakeWeCom.running(**wd.fake_options()) as fake:
        yield fake


@pytest.fixture(params=["dispatcher", "simulator", "dingtalk_http", "dingtalk_stream",
                        "wecom_aibot_callback", "wecom_aibot_ws", "wecom_app"])
def world(request, db, db_url):
    """A seeded organisation and a driver for one channel."""
    ids = suite.seed_world(db, datetime.now(UTC))
    settings = Settings(_env_file=None, database_url=db_url, app_env="dev")
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
    if request.param == "dispatcher":
        driver = DispatcherDriver(db, build_dispatcher(engine=db, settings=settings))
        yield driver, ids, driver.bind(branch)
        return
    if request.param == "simulator":
        with TestClient(create_app(settings)) as client:
            driver = SimulatorDriver(db, client)
            yield driver, ids, driver.bind(branch)
        return
    if request.param.startswith("wecom"):
        yield from _wecom_world(request, db, settings, branch, ids)
        return
    fake = request.getfixturevalue("fake_dingtalk")
    fake.reset()
    settings = settings.model_copy(update={
        "dingtalk_client_id": dd.CLIENT_ID, "dingtalk_client_secret": SecretStr(dd.SECRET),
        "dingtalk_api_base": fake.base_url, "dingtalk_oapi_base": fake.base_url,
        "dingtalk_card_template_id": dd.TEMPLATE})
    with TestClient(create_app(settings)) as client:
        app = client.app
        if request.param == "dingtalk_http":
            driver = dd.DingTalkHttpDriver(db, fake, client)
        else:
            driver = dd.DingTalkStreamDriver(db, fake, app.state.outbox_worker)
        dispatcher, deliverer = app.state.dispatcher, app.state.dingtalk
        if isinstance(driver, dd.DingTalkStreamDriver):
            # Same handlers as the CLI's stream, wrapped so the test can wait for each message.
            stream = StreamClient(
                http_base=fake.base_url, client_id=dd.CLIENT_ID, client_secret=dd.SECRET,
                on_bot_message=driver.wrap(lambda payload: handle_bot_message(
                    payload=payload, dispatcher=dispatcher, deliverer=deliverer)),
                on_card_callback=lambda payload: handle_card_click(
                    payload=payload, dispatcher=dispatcher, deliverer=deliverer),
                backoff_base_s=0.05)
        else:
            stream = dingtalk_stream(settings=settings, dispatcher=dispatcher,
                                     deliverer=deliverer, backoff_base_s=0.05)
        thread = threading.Thread(target=stream.run_forever, daemon=True)
        thread.start()
        FakeDingTalk.wait_for(lambda: fake.live_connections > 0, what="stream connected")
        try:
            yield driver, ids, driver.bind(branch)
        finally:
            stream.stop()
            thread.join(timeout=5)


def test_my_points(world):
    chat, _, group = world
    suite.check_my_points(chat, group)


def test_period_words(world):
    chat, _, _ = world
    suite.check_period_words(chat)


def test_board(world):
    chat, _, group = world
    suite.check_board(chat, group)


def test_leave_flow(world):
    chat, ids, group = world
    suite.check_leave_flow(chat, ids["activity"], group)


def test_leave_card(world, db):
    chat, ids, _ = world
    suite.check_leave_card(chat, db, ids["activity"])


def test_help_is_role_aware(world):
    chat, _, _ = world
    suite.check_help_is_role_aware(chat)


def test_unknown_and_strangers(world):
    chat, _, group = world
    suite.check_unknown_and_strangers(chat, group)


def test_group_binding(world, db):
    chat, _, _ = world
    suite.check_group_binding(chat, db)


def test_duplicates_answered_once(world):
    chat, _, group = world
    suite.check_duplicates_answered_once(chat, group)


def test_declaration_review(world):
    chat, ids, _ = world
    suite.check_declaration_review(chat, ids["declared"])


def _wecom_world(request, db, settings, branch, ids):
    fake = request.getfixturevalue("fake_wecom")
    fake.reset()
    wd.move_people_to_wecom(db, fake)
    settings = settings.model_copy(update=wd.settings_update(fake))
    with TestClient(create_app(settings)) as client:
        app = client.app
        channel, worker = app.state.wecom, app.state.outbox_worker
        if request.param == "wecom_aibot_callback":
            driver = wd.WeComAibotCallbackDriver(db, fake, client, worker)
        elif request.param == "wecom_app":
            driver = wd.WeComAppDriver(db, fake, client, worker)
        else:
            driver = wd.WeComAibotSocketDriver(db, fake, client, worker)
        if not isinstance(driver, wd.WeComAibotSocketDriver):
            yield driver, ids, driver.bind(branch)
            return
        # The long connection as `partypoints wecom-aibot` runs it, its handler wrapped so the
        # test can wait for each message; posts to groups go through the connection too.
        handler = aibot_message_handler(
            dispatcher=app.state.dispatcher, deliverer=channel.deliverer,
            respond=lambda req_id, markdown: connection.respond(req_id=req_id,
                                                                markdown=markdown))
        connection = AibotConnection(url=fake.ws_url, bot_id=wd.AIBOT_ID,
                                     secret=wd.AIBOT_SECRET, on_message=driver.wrap(handler),
                                     backoff_base_s=0.05)
        channel.deliverer.aibot = connection
        thread = threading.Thread(target=connection.run_forever, daemon=True)
        thread.start()
        assert connection.wait_connected(10), "the AI bot did not connect"
        try:
            yield driver, ids, driver.bind(branch)
        finally:
            connection.stop()
            thread.join(timeout=5)
