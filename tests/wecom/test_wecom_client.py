"""WeComClient against the running fake WeCom: token cache and refresh, app messages, template
card updates, H5 login codes, group-robot webhooks and network failures."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.fakes.wecom import FakeWeCom
from bot.wecom.client import (
    MARKDOWN_MAX_BYTES,
    WeComClient,
    WeComError,
    split_markdown,
)
from tests.chat import wecom_drivers as wd

GETTOKEN = "/cgi-bin/gettoken"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeWeCom]:
    with FakeWeCom.running(**wd.fake_options()) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeWeCom) -> Iterator[FakeWeCom]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def _client(fake: FakeWeCom, http: httpx.Client, *, secret: str = wd.SECRET,
            api_base: str | None = None) -> WeComClient:
    return WeComClient(http=http, api_base=api_base or fake.base_url, corp_id=wd.CORP_ID,
                       secret=secret, agent_id=str(wd.AGENT_ID))


def _markdown(client: WeComClient, userid: str, content: str) -> dict[str, Any]:
    return client.send_message(user_ids=[userid], msgtype="markdown",
                               content={"content": content})


def _card(task_id: str) -> dict[str, Any]:
    return {
        "card_type": "button_interaction",
        "task_id": task_id,
        "source": {"desc": "党员积分助手"},
        "main_title": {"title": "请假审批", "desc": "张三 · 5月组织生活会"},
        "button_list": [
            {"text": "批准", "style": 1, "key": "approve|id=1"},
            {"text": "驳回", "style": 2, "key": "reject|id=1"},
        ],
    }


# --------------------------------------------------------------------------- access token


def test_the_token_is_fetched_once_and_cached(fake: FakeWeCom, http: httpx.Client) -> None:
    fake.add_user("zhangsan")
    client = _client(fake, http)
    for i in range(4):
        assert _markdown(client, "zhangsan", f"第{i}条")["msgid"]
    assert fake.requests(GETTOKEN) == 1
    assert fake.requests("/cgi-bin/message/send") == 4
    assert len(fake.sent) == 4


def test_an_expired_token_is_refetched_once_and_the_call_retried(
    fake: FakeWeCom, http: httpx.Client
) -> None:
    fake.add_user("zhangsan")
    client = _client(fake, http)
    _markdown(client, "zhangsan", "之前")
    fake.expire_tokens()
    _markdown(client, "zhangsan", "之后")
    assert fake.requests(GETTOKEN) == 2
    # One refused call with the stale token, then the retry.
    assert fake.requests("/cgi-bin/message/send") == 3
    assert [s.text for s in fake.sent] == ["之前", "之后"]
    _markdown(client, "zhangsan", "再来")
    assert fake.requests(GETTOKEN) == 2


def test_a_wrong_secret_fails_without_looping(fake: FakeWeCom, http: httpx.Client) -> None:
    fake.add_user("zhangsan")
    secret = "definitely-not-the-app-secret"
    client = _client(fake, http, secret=secret)
    with pytest.raises(WeComError) as caught:
        _markdown(client, "zhangsan", "hi")
    assert caught.value.code == "40001"
    assert secret not in str(caught.value) and secret not in repr(client)
    assert fake.requests(GETTOKEN) == 1
    assert fake.requests("/cgi-bin/message/send") == 0
    # The next call tries again (nothing bad is cached), still once per call.
    with pytest.raises(WeComError):
        _markdown(client, "zhangsan", "hi")
    assert fake.requests(GETTOKEN) == 2
    assert fake.sent == []


# --------------------------------------------------------------------------- app messages


def test_send_message_to_unknown_users_only_is_an_error(
    fake: FakeWeCom, http: httpx.Client
) -> None:
    fake.add_user("zhangsan")
    client = _client(fake, http)
    with pytest.raises(WeComError) as caught:
        _markdown(client, "ghost", "hi")
    assert caught.value.code == "81013"
    # Some unknown among known recipients is only a warning: the known ones get it.
    result = client.send_message(user_ids=["zhangsan", "ghost"], msgtype="markdown",
                                 content={"content": "**本月积分** 120"})
    assert result["invaliduser"] == "ghost"
    assert [(s.kind, s.target, s.msgtype, s.text) for s in fake.sent] == [
        ("app", "zhangsan|ghost", "markdown", "**本月积分** 120")
    ]
    assert fake.sent[0].body["agentid"] == wd.AGENT_ID


def test_a_template_card_is_sent_and_its_button_replaced_once(
    fake: FakeWeCom, http: httpx.Client
) -> None:
    fake.add_user("secretary")
    client = _client(fake, http)
    result = client.send_message(user_ids=["secretary"], msgtype="template_card",
                                 content=_card("leave-1-abc"))
    code = result["response_code"]
    assert code and fake.cards["leave-1-abc"].response_code == code
    assert client.update_card_button(user_ids=["secretary"], response_code=code,
                                     replace_name="已批准") is True
    card = fake.cards["leave-1-abc"]
    assert card.replaced_button == "已批准" and card.updates == 1
    # The code is single use: a second update (a redelivered click) is "already done".
    assert client.update_card_button(user_ids=["secretary"], response_code=code,
                                     replace_name="已驳回") is False
    card = fake.cards["leave-1-abc"]
    assert card.replaced_button == "已批准" and card.updates == 1
    assert [s.kind for s in fake.sent] == ["app", "update_card"]


# --------------------------------------------------------------------------- H5 login


def test_userid_from_code(fake: FakeWeCom, http: httpx.Client) -> None:
    client = _client(fake, http)
    code = fake.issue_login_code("lisi")
    assert client.userid_from_code(code) == "lisi"
    with pytest.raises(WeComError) as caught:
        client.userid_from_code(code)
    assert caught.value.code == "40029"
    with pytest.raises(WeComError):
        client.userid_from_code("made-up")
    assert fake.requests(GETTOKEN) == 1


# --------------------------------------------------------------------------- group robots


def test_send_webhook_unknown_key(fake: FakeWeCom, http: httpx.Client) -> None:
    client = _client(fake, http)
    key = "robot-key-that-is-a-credential"
    webhook = f"{fake.base_url}/cgi-bin/webhook/send?key={key}"
    with pytest.raises(WeComError) as caught:
        client.send_webhook(webhook=webhook, body={"msgtype": "markdown",
                                                   "markdown": {"content": "hi"}})
    assert caught.value.code == "93000"
    assert key not in str(caught.value)
    # Webhooks take no token.
    assert fake.requests(GETTOKEN) == 0


def test_long_markdown_is_refused_but_its_pieces_go_through(
    fake: FakeWeCom, http: httpx.Client
) -> None:
    client = _client(fake, http)
    webhook = fake.add_webhook("robot-1")
    lines = [f"{i:03d}. 第一党支部 张三 积分 {i * 3} 分" for i in range(200)]
    text = "\n".join(lines)
    assert len(text.encode()) > MARKDOWN_MAX_BYTES
    with pytest.raises(WeComError) as caught:
        client.send_webhook(webhook=webhook, body={"msgtype": "markdown",
                                                   "markdown": {"content": text}})
    assert caught.value.code == "40058"
    pieces = split_markdown(text)
    assert 1 < len(pieces) < 20  # within the robot's 20 a minute
    for piece in pieces:
        assert len(piece.encode()) <= MARKDOWN_MAX_BYTES
        client.send_webhook(webhook=webhook, body={"msgtype": "markdown",
                                                   "markdown": {"content": piece}})
    sent = fake.sent
    assert [(s.kind, s.target) for s in sent] == [("webhook", "robot-1")] * len(pieces)
    received = [s.text.removesuffix("\n（续）") for s in sent]
    assert "\n".join(received).split("\n") == lines


# --------------------------------------------------------------------------- failures


def test_a_network_failure_is_a_network_error_without_credentials(
    fake: FakeWeCom, http: httpx.Client
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    secret = "super-secret-corp-secret-value"
    client = _client(fake, http, secret=secret, api_base=dead)
    with pytest.raises(WeComError) as caught:
        _markdown(client, "zhangsan", "hi")
    exc = caught.value
    assert exc.code == "network" and exc.status is None
    shown = "".join(traceback.format_exception(exc))
    for text in (str(exc), repr(exc), exc.message, shown):
        assert secret not in text and "corpsecret" not in text
    key = "webhook-key-credential"
    with pytest.raises(WeComError) as caught:
        client.send_webhook(webhook=f"{dead}/cgi-bin/webhook/send?key={key}",
                            body={"msgtype": "text", "text": {"content": "x"}})
    assert caught.value.code == "network"
    assert key not in str(caught.value)
    assert key not in "".join(traceback.format_exception(caught.value))
