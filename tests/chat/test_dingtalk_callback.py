"""DingTalk HTTP-mode callback: signatures, stale and replayed callbacks, webhook expiry."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from bot.fakes.dingtalk import FakeDingTalk, signed_callback_headers
from tests.chat import conformance as suite
from tests.chat import dingtalk_drivers as dd

HOUR_MS = 3_600_000


@contextmanager
def world_and_fake(db, db_url) -> Iterator[tuple[Settings, FakeDingTalk]]:
    """The demo world, a running fake DingTalk and settings pointing the app at it."""
    suite.seed_world(db, datetime.now(UTC))
    with FakeDingTalk.running(client_id=dd.CLIENT_ID, client_secret=dd.SECRET,
                              robot_code=dd.CLIENT_ID) as fake:
        yield Settings(_env_file=None, database_url=db_url, dingtalk_client_id=dd.CLIENT_ID,
                       dingtalk_client_secret=SecretStr(dd.SECRET),
                       dingtalk_api_base=fake.base_url, dingtalk_oapi_base=fake.base_url), fake


@pytest.fixture
def app_and_fake(db, db_url):
    with world_and_fake(db, db_url) as (settings, fake), \
            TestClient(create_app(settings)) as client:
        yield client, fake


def post(client, body, headers):
    """POST the callback and wait for whatever handling it queued."""
    response = client.post("/bot/dingtalk/callback",
                           content=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
    client.app.state.chat_handlers.join()
    return response


def now_ms():
    return int(time.time() * 1000)


@pytest.mark.parametrize(
    ("headers", "why"),
    [(lambda: signed_callback_headers("wrong-secret", now_ms()), "bad sign"),
     (lambda: signed_callback_headers(dd.SECRET, now_ms() - 2 * HOUR_MS), "2 hours old"),
     (lambda: signed_callback_headers(dd.SECRET, now_ms() + 2 * HOUR_MS), "from the future"),
     (lambda: {"Content-Type": "application/json"}, "no headers")],
)
def test_forged_or_stale_callbacks_are_rejected_and_logged(app_and_fake, caplog, headers, why):
    client, fake = app_and_fake
    body = fake.bot_message_body(text="/我的积分", sender_staff_id=suite.MEMBER)
    with caplog.at_level(logging.WARNING):
        response = post(client, body, headers())
    assert response.status_code == 401, why
    assert "dingtalk callback rejected" in caplog.text
    assert fake.sent == []


def test_a_replayed_callback_is_answered_once(app_and_fake):
    client, fake = app_and_fake
    body = fake.bot_message_body(text="/我的积分", sender_staff_id=suite.MEMBER)
    headers = signed_callback_headers(dd.SECRET, now_ms())
    assert post(client, body, headers).status_code == 200
    assert post(client, body, headers).status_code == 200
    assert len(fake.sent) == 2  # the reply, and the rank sent privately: once each
    assert [m.kind for m in fake.sent] == ["session", "single"]


def test_group_replies_mention_the_sender(app_and_fake):
    client, fake = app_and_fake
    body = fake.bot_message_body(text="/帮助", sender_staff_id=suite.MEMBER)
    post(client, body, signed_callback_headers(dd.SECRET, now_ms()))
    (reply,) = fake.sent
    assert reply.body["at"] == {"atUserIds": [suite.MEMBER]}
    assert reply.body["markdown"]["text"].endswith(f"@{suite.MEMBER}")


def test_an_expired_session_webhook_falls_back_to_the_openapi(app_and_fake):
    client, fake = app_and_fake
    fake.add_group("cid-old")
    body = fake.bot_message_body(text="/帮助", sender_staff_id=suite.MEMBER,
                                 conversation_id="cid-old", session_ttl_s=1)
    post(client, body, signed_callback_headers(dd.SECRET, now_ms()))
    (reply,) = fake.sent
    assert reply.kind == "group" and reply.conversation_id == "cid-old"
    assert "/我的积分" in reply.text


def test_a_body_that_is_not_json_gets_400(app_and_fake):
    client, _ = app_and_fake
    response = client.post("/bot/dingtalk/callback", content=b"not json",
                           headers=signed_callback_headers(dd.SECRET, now_ms()))
    assert response.status_code == 400


def test_without_dingtalk_settings_the_callback_is_unavailable(db_url):
    with TestClient(create_app(Settings(_env_file=None, database_url=db_url))) as client:
        response = client.post("/bot/dingtalk/callback", content=b"{}",
                               headers=signed_callback_headers("x", now_ms()))
    assert response.status_code == 503


def test_an_answered_message_is_still_replied_to_when_the_server_stops(db, db_url):
    with world_and_fake(db, db_url) as (settings, fake):
        body = fake.bot_message_body(text="/帮助", sender_staff_id=suite.MEMBER)
        raw = json.dumps(body, ensure_ascii=False).encode()
        with TestClient(create_app(settings)) as client:
            answered = client.post("/bot/dingtalk/callback", content=raw,
                                   headers=signed_callback_headers(dd.SECRET, now_ms()))
            assert answered.status_code == 200
        # The server stopped without anyone waiting for the handler: it ran before the exit.
        assert [m.kind for m in fake.sent] == ["session"]
        late = client.post("/bot/dingtalk/callback", content=raw,
                           headers=signed_callback_headers(dd.SECRET, now_ms()))
    assert late.status_code == 503 and late.json() == {"error": "服务正在重启，请稍后再试"}
