"""The WeCom callbacks through the fake WeCom: URL verification, the deadline, redeliveries,
card clicks applied once, and bad input refused with a log line (never a 500)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import select

from app.config import Settings
from app.db import write_session
from app.main import create_app
from app.models import LeaveRequest, OutboxMessage
from bot.fakes.wecom import FakeWeCom
from bot.fakes.wecom_crypto import WXBizMsgCrypt, sha1_signature
from tests.chat import conformance as suite
from tests.chat import wecom_drivers as wd


@pytest.fixture(scope="module")
def fake():
    """One fake WeCom for the module."""
    with FakeWeCom.running(**wd.fake_options()) as fake:
        yield fake


@pytest.fixture
def world(fake, db, db_url):
    """The demo organisation on WeCom and the app pointed at the fake."""
    fake.reset()
    ids = suite.seed_world(db, datetime.now(UTC))
    wd.move_people_to_wecom(db, fake)
    settings = Settings(_env_file=None, database_url=db_url).model_copy(
        update=wd.settings_update(fake))
    with TestClient(create_app(settings)) as client:
        yield client, ids


def _post(client: TestClient, path: str, **kwargs: object) -> Response:
    """POST a callback and wait for whatever handling it queued."""
    response = client.post(path, **kwargs)
    client.app.state.chat_handlers.join()  # type: ignore[attr-defined]
    return response


def test_url_verification_returns_the_bare_plaintext(fake, world):
    client, _ = world
    query, plain = fake.app_verify_query()
    response = client.get("/bot/wecom/callback", params=query)
    assert response.status_code == 200 and response.text == plain
    query, plain = fake.aibot_verify_query()
    response = client.get("/bot/wecom/aibot/callback", params=query)
    assert response.status_code == 200 and response.text == plain
    # The app's key cannot verify the AI bot's URL, and the other way round.
    assert client.get("/bot/wecom/callback", params=query).status_code == 403


def test_redelivered_app_message_is_answered_once(fake, world):
    client, _ = world
    query, body = fake.app_text_request(from_user=suite.MEMBER, content="/我的积分",
                                        msg_id="42")
    for _ in range(3):
        assert _post(client, "/bot/wecom/callback", params=query, content=body).status_code == 200
    replies = [m for m in fake.sent if m.kind == "app" and m.target == suite.MEMBER]
    assert len(replies) == 1 and "合计" in replies[0].text


def _leave_card(fake: FakeWeCom, client: TestClient, activity: int) -> str:
    query, body = fake.app_text_request(from_user=suite.MEMBER,
                                        content=f"/请假 {activity} 事假 出差在外")
    _post(client, "/bot/wecom/callback", params=query, content=body)
    client.app.state.outbox_worker.run_once()  # type: ignore[attr-defined]
    (task_id,) = fake.cards
    assert fake.cards[task_id].touser == suite.SECRETARY
    return task_id


def test_card_click_applied_and_card_updated_once(fake, world, db):
    client, ids = world
    task_id = _leave_card(fake, client, ids["activity"])
    card = fake.cards[task_id]
    key = card.card["button_list"][0]["key"]
    query, body = fake.click_card(task_id=task_id, userid=suite.SECRETARY, key=key)
    # WeCom redelivers an event it got no 200 for: the same click arrives three times.
    for _ in range(3):
        assert _post(client, "/bot/wecom/callback", params=query, content=body).status_code == 200
    client.app.state.outbox_worker.run_once()  # type: ignore[attr-defined]
    card = fake.cards[task_id]
    assert card.updates == 1 and "已批准" in (card.replaced_button or "")
    with write_session(db) as s:
        leave = s.exec(select(LeaveRequest)).one()
        assert leave.status == "approved"
        verdicts = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "leave-decided"))
        assert len(verdicts.all()) == 1
    told = [m.text for m in fake.sent if m.kind == "app" and m.target == suite.MEMBER]
    assert sum("已批准" in text for text in told) == 1


def test_reply_within_the_deadline_over_real_http(fake, db, monkeypatch, request):
    suite.seed_world(db, datetime.now(UTC))
    wd.move_people_to_wecom(db, fake)
    for name, value in wd.settings_update(fake).items():
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        monkeypatch.setenv(name.upper(), str(raw))
    base = request.getfixturevalue("live_server")
    query, body = fake.app_text_request(from_user=suite.MEMBER, content="/帮助")
    response = fake.deliver_app_callback(f"{base}/bot/wecom/callback", query, body)
    # Answered at once (WeCom retries after 5 s), the reply follows from the background.
    assert response.status_code == 200 and response.text == ""
    assert fake.last_delivery_attempts == 1
    FakeWeCom.wait_for(lambda: any(m.target == suite.MEMBER for m in fake.sent),
                       what="the reply to arrive")


def _signed(crypt_token: str, encrypt: str) -> dict[str, str]:
    timestamp, nonce = "1700000000", "12345"
    _, signature = sha1_signature(crypt_token, timestamp, nonce, encrypt)
    return {"msg_signature": signature or "", "timestamp": timestamp, "nonce": nonce}


def _envelope(encrypt: str) -> bytes:
    return f"<xml><ToUserName>{wd.CORP_ID}</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>" \
           f"<AgentID>{wd.AGENT_ID}</AgentID></xml>".encode()


def _bad_requests(fake: FakeWeCom) -> dict[str, tuple[dict[str, str], bytes]]:
    query, body = fake.app_text_request(from_user=suite.MEMBER, content="/我的积分")
    forged = dict(query, msg_signature="0" * 40)
    stale = dict(query, nonce=query["nonce"] + "1")
    # Encrypted for another corp: the signature is right, the receiveid is not.
    other = WXBizMsgCrypt(wd.TOKEN, wd.AES_KEY, "wwsomeoneelse")
    _, encrypt = other.prp.encrypt("<xml><MsgType>text</MsgType></xml>", "wwsomeoneelse")
    assert encrypt is not None
    truncated = encrypt[:-7]
    xxe = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b"<xml><Encrypt>&x;</Encrypt></xml>")
    return {
        "forged signature": (forged, body),
        "stale nonce": (stale, body),
        "wrong receiveid": (_signed(wd.TOKEN, encrypt), _envelope(encrypt)),
        "truncated base64": (_signed(wd.TOKEN, truncated), _envelope(truncated)),
        "external entity": (query, xxe),
        "not xml": (query, b"{\"encrypt\": 1}"),
    }


def test_bad_input_is_refused_and_logged(fake, world, caplog):
    client, _ = world
    caplog.set_level(logging.WARNING, logger="bot.wecom.callback")
    for case, (query, body) in _bad_requests(fake).items():
        caplog.clear()
        response = client.post("/bot/wecom/callback", params=query, content=body)
        assert response.status_code == 403, case
        assert any("rejected" in r.getMessage() for r in caplog.records), case
    huge = client.post("/bot/wecom/callback?" + urlencode({"msg_signature": "x"}),
                       content=b"<xml>" + b"a" * 100_000 + b"</xml>")
    assert huge.status_code == 413
    aibot = client.post("/bot/wecom/aibot/callback", params={"msg_signature": "x"},
                        content=b"not json")
    assert aibot.status_code == 403
    # Nothing was parsed into a message, so nothing was answered.
    assert fake.sent == []


def test_not_configured_is_503(db_url):
    settings = Settings(_env_file=None, database_url=db_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/bot/wecom/callback").status_code == 503
        assert client.post("/bot/wecom/aibot/callback", content=b"{}").status_code == 503
