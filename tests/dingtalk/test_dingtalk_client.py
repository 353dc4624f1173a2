"""The DingTalk OpenAPI client against the fake DingTalk over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.fakes.dingtalk import FakeDingTalk
from bot.http import platform_http

CLIENT_ID = "dingclientid001"
CLIENT_SECRET = "client-secret-不要外泄-001"
ROBOT_CODE = "dingrobot001"
GROUP = "cidGroupOne=="
TOKEN_PATH = "/v1.0/oauth2/accessToken"
GROUP_PATH = "/v1.0/robot/groupMessages/send"


class Clock:
    """A settable clock for the client under test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDingTalk]:
    # One server for the module (starting and stopping uvicorn costs ~0.2 s); reset per test.
    with FakeDingTalk.running(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, robot_code=ROBOT_CODE
    ) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeDingTalk) -> FakeDingTalk:
    server.reset()
    server.add_group(GROUP)
    return server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with platform_http(timeout_s=5.0) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(fake: FakeDingTalk, http: httpx.Client, clock: Clock) -> DingTalkClient:
    return DingTalkClient(
        http=http,
        api_base=fake.base_url,
        oapi_base=fake.base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        robot_code=ROBOT_CODE,
        clock=clock,
    )


def _text(content: str) -> dict:
    return {"msgtype": "text", "text": {"content": content}}


# ---------------------------------------------------------------- tokens


def test_app_token_is_fetched_once_and_reused(client: DingTalkClient, fake: FakeDingTalk) -> None:
    for n in range(3):
        client.send_group(
            open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": f"第{n}条"}
        )
    assert fake.request_count(TOKEN_PATH) == 1
    assert len(fake.sent) == 3


def test_app_token_is_refreshed_five_minutes_before_expiry(
    client: DingTalkClient, fake: FakeDingTalk, clock: Clock
) -> None:
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "1"})
    clock.now += 7200 - 301
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "2"})
    assert fake.request_count(TOKEN_PATH) == 1
    clock.now += 2
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "3"})
    assert fake.request_count(TOKEN_PATH) == 2


def test_expired_token_is_refreshed_once_on_401(client: DingTalkClient, fake: FakeDingTalk) -> None:
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "1"})
    fake.expire_tokens()
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "2"})
    assert fake.request_count(TOKEN_PATH) == 2
    assert fake.request_count(GROUP_PATH) == 3  # 1, then 2 answered 401, then 2 again
    assert [m.msg_param for m in fake.sent] == [{"content": "1"}, {"content": "2"}]


def test_a_second_401_is_not_retried_again(client: DingTalkClient, fake: FakeDingTalk) -> None:
    body = {"code": "InvalidAuthentication", "message": "不合法的access_token"}
    fake.inject_fault(GROUP_PATH, status=401, body=body, times=5)
    with pytest.raises(DingTalkError) as info:
        client.send_group(
            open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "x"}
        )
    assert (info.value.status, info.value.code, info.value.retryable) == (
        401,
        "InvalidAuthentication",
        False,
    )
    assert fake.request_count(GROUP_PATH) == 2
    assert fake.request_count(TOKEN_PATH) == 2


def test_concurrent_callers_share_one_token_fetch(
    client: DingTalkClient, fake: FakeDingTalk
) -> None:
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            client.send_group(
                open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": str(n)}
            )
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert fake.request_count(TOKEN_PATH) == 1
    assert len(fake.sent) == 8


def test_wrong_secret_is_a_non_retryable_error(fake: FakeDingTalk, http: httpx.Client) -> None:
    client = DingTalkClient(
        http=http,
        api_base=fake.base_url,
        oapi_base=fake.base_url,
        client_id=CLIENT_ID,
        client_secret="wrong",
        robot_code=ROBOT_CODE,
    )
    with pytest.raises(DingTalkError) as info:
        client.send_group(
            open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "x"}
        )
    assert (info.value.status, info.value.retryable) == (400, False)
    assert info.value.code == "invalidClientIdOrSecret"


# ---------------------------------------------------------------- robot messages


def test_group_message_is_recorded_with_msg_param_as_a_json_string(
    client: DingTalkClient, fake: FakeDingTalk
) -> None:
    key = client.send_group(
        open_conversation_id=GROUP,
        msg_key="sampleMarkdown",
        msg_param={"title": "本月积分榜", "text": "## 第一党支部\n1. 张三 12 分"},
    )
    assert key
    [sent] = fake.sent
    assert (sent.kind, sent.target, sent.msg_key) == ("group", GROUP, "sampleMarkdown")
    assert sent.body["robotCode"] == ROBOT_CODE
    assert isinstance(sent.body["msgParam"], str)
    assert sent.msg_param == {"title": "本月积分榜", "text": "## 第一党支部\n1. 张三 12 分"}
    assert "张三 12 分" in sent.text


def test_single_message_is_recorded(client: DingTalkClient, fake: FakeDingTalk) -> None:
    key = client.send_single(
        user_ids=["user001", "user002"], msg_key="sampleText", msg_param={"content": "请审批"}
    )
    assert key
    [sent] = fake.sent
    assert (sent.kind, sent.target, sent.msg_param) == (
        "single",
        ("user001", "user002"),
        {"content": "请审批"},
    )


def test_send_to_an_unknown_group_or_without_the_robot_fails(
    client: DingTalkClient, fake: FakeDingTalk
) -> None:
    fake.add_group("cidNoRobot", robot_member=False)
    with pytest.raises(DingTalkError) as unknown:
        client.send_group(
            open_conversation_id="cidNope", msg_key="sampleText", msg_param={"content": "x"}
        )
    with pytest.raises(DingTalkError) as outside:
        client.send_group(
            open_conversation_id="cidNoRobot", msg_key="sampleText", msg_param={"content": "x"}
        )
    assert unknown.value.code == "invalidParameter.openConversationId.invalid"
    assert outside.value.code == "robot.notInGroup"
    assert not unknown.value.retryable and not outside.value.retryable
    assert fake.sent == []


def test_fake_checks_msg_param_fields(client: DingTalkClient) -> None:
    with pytest.raises(DingTalkError) as info:
        client.send_group(
            open_conversation_id=GROUP, msg_key="sampleMarkdown", msg_param={"text": "无标题"}
        )
    assert info.value.code == "invalidParameter.msgParam.invalid"


def test_msg_param_up_to_15000_bytes_is_sent(client: DingTalkClient, fake: FakeDingTalk) -> None:
    overhead = len(json.dumps({"content": ""}, separators=(",", ":")))
    client.send_group(
        open_conversation_id=GROUP,
        msg_key="sampleText",
        msg_param={"content": "x" * (15_000 - overhead)},
    )
    assert len(fake.sent[0].body["msgParam"].encode()) == 15_000


def test_msg_param_over_15000_bytes_is_refused_locally(
    client: DingTalkClient, fake: FakeDingTalk
) -> None:
    with pytest.raises(DingTalkError) as info:
        # 5,001 Chinese characters are 15,003 bytes of UTF-8 before the JSON around them.
        client.send_group(
            open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "党" * 5001}
        )
    assert info.value.code == "local.msgParamTooLarge"
    assert not info.value.retryable
    assert "15000" in info.value.message
    assert fake.request_count(GROUP_PATH) == 0
    assert fake.request_count(TOKEN_PATH) == 0


def test_server_errors_are_retryable(client: DingTalkClient, fake: FakeDingTalk) -> None:
    fake.inject_fault(GROUP_PATH, status=503)
    with pytest.raises(DingTalkError) as info:
        client.send_group(
            open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "x"}
        )
    assert (info.value.status, info.value.retryable) == (503, True)


def test_network_errors_are_retryable(http: httpx.Client) -> None:
    with socket_port_closed() as base:
        client = DingTalkClient(
            http=http,
            api_base=base,
            oapi_base=base,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            robot_code=ROBOT_CODE,
        )
        with pytest.raises(DingTalkError) as info:
            client.send_single(user_ids=["u"], msg_key="sampleText", msg_param={"content": "x"})
    assert (info.value.code, info.value.status, info.value.retryable) == ("network", None, True)


class socket_port_closed:
    """A 127.0.0.1 base URL on which nothing listens."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        return None


# ---------------------------------------------------------------- custom robot (§3.1)


def test_custom_robot_with_sign_and_keyword(client: DingTalkClient, fake: FakeDingTalk) -> None:
    webhook = fake.add_custom_robot("tok1", secret="SECabc123", keywords=("积分",))
    client.send_custom_robot(webhook=webhook, secret="SECabc123", body=_text("本月积分榜已发布"))
    [sent] = fake.sent
    assert (sent.kind, sent.target) == ("custom", "tok1")
    assert sent.body["text"]["content"] == "本月积分榜已发布"


@pytest.mark.parametrize(
    ("secret", "shift_s", "errmsg"),
    [
        ("SECwrong", 0, "sign not match"),
        (None, 0, "invalid timestamp"),  # a signing robot called without timestamp and sign
        ("SECabc123", -7200, "invalid timestamp"),
        ("SECabc123", 3700, "invalid timestamp"),
    ],
)
def test_custom_robot_rejects_bad_sign_and_timestamp(
    client: DingTalkClient,
    fake: FakeDingTalk,
    clock: Clock,
    secret: str | None,
    shift_s: int,
    errmsg: str,
) -> None:
    webhook = fake.add_custom_robot("tok1", secret="SECabc123")
    clock.now += shift_s
    with pytest.raises(DingTalkError) as info:
        client.send_custom_robot(webhook=webhook, secret=secret, body=_text("你好"))
    assert (info.value.code, info.value.message, info.value.retryable) == ("310000", errmsg, False)
    assert fake.sent == []


def test_custom_robot_requires_a_keyword(client: DingTalkClient, fake: FakeDingTalk) -> None:
    webhook = fake.add_custom_robot("tok2", keywords=("积分", "党建"))
    with pytest.raises(DingTalkError) as info:
        client.send_custom_robot(webhook=webhook, secret=None, body=_text("今天天气不错"))
    assert (info.value.code, info.value.message) == ("310000", "keywords not in content")
    client.send_custom_robot(
        webhook=webhook,
        secret=None,
        body={"msgtype": "markdown", "markdown": {"title": "党建活动", "text": "周五学习"}},
    )
    assert len(fake.sent) == 1


def test_custom_robot_unknown_token(client: DingTalkClient, fake: FakeDingTalk) -> None:
    with pytest.raises(DingTalkError) as info:
        client.send_custom_robot(
            webhook=f"{fake.base_url}/robot/send?access_token=nope", secret=None, body=_text("x")
        )
    assert (info.value.code, info.value.message) == ("300005", "token is not exist")


def test_custom_robot_body_over_20000_bytes(client: DingTalkClient, fake: FakeDingTalk) -> None:
    webhook = fake.add_custom_robot("tok3")
    with pytest.raises(DingTalkError) as info:
        client.send_custom_robot(webhook=webhook, secret=None, body=_text("x" * 20_001))
    assert (info.value.code, info.value.retryable) == ("460101", False)


def test_the_21st_message_in_a_minute_is_throttled_for_ten_minutes(
    client: DingTalkClient, fake: FakeDingTalk, clock: Clock
) -> None:
    webhook = fake.add_custom_robot("tok4", secret="SECrate")
    for n in range(20):
        client.send_custom_robot(webhook=webhook, secret="SECrate", body=_text(f"第{n}条"))
    with pytest.raises(DingTalkError) as info:
        client.send_custom_robot(webhook=webhook, secret="SECrate", body=_text("第21条"))
    assert (info.value.code, info.value.status, info.value.retryable) == ("130101", 200, True)
    # The window has moved on, but the lockout lasts ten minutes.
    fake.advance(61)
    clock.now += 61
    with pytest.raises(DingTalkError):
        client.send_custom_robot(webhook=webhook, secret="SECrate", body=_text("还在锁定"))
    fake.advance(540)
    clock.now += 540
    client.send_custom_robot(webhook=webhook, secret="SECrate", body=_text("解锁了"))
    assert len(fake.sent) == 21


# ---------------------------------------------------------------- session webhook (§1.4)


def test_session_webhook_reply_is_recorded(client: DingTalkClient, fake: FakeDingTalk) -> None:
    url, expires_at_ms = fake.new_session_webhook(conversation_id=GROUP)
    assert expires_at_ms - fake.now_ms() == pytest.approx(5_400_000, abs=1000)
    body = {
        "msgtype": "text",
        "text": {"content": "@user001 本月 12 分"},
        "at": {"atUserIds": ["user001"]},
    }
    client.send_session_webhook(url=url, body=body)
    [sent] = fake.sent
    assert (sent.kind, sent.conversation_id, sent.body) == ("session", GROUP, body)


def test_expired_session_webhook_is_refused(client: DingTalkClient, fake: FakeDingTalk) -> None:
    url, _ = fake.new_session_webhook(ttl_s=60)
    fake.advance(61)
    with pytest.raises(DingTalkError) as info:
        client.send_session_webhook(url=url, body=_text("迟到的回复"))
    assert (info.value.code, info.value.retryable) == ("300001", False)
    assert fake.sent == []


def test_session_webhook_from_a_callback_body(client: DingTalkClient, fake: FakeDingTalk) -> None:
    body = fake.bot_message_body(text="/我的积分", conversation_id=GROUP, sender_staff_id="u9")
    assert body["text"]["content"] == " /我的积分"
    assert (body["conversationType"], body["senderStaffId"], body["robotCode"]) == (
        "2",
        "u9",
        ROBOT_CODE,
    )
    assert body["sessionWebhookExpiredTime"] - body["createAt"] == 5_400_000
    client.send_session_webhook(url=body["sessionWebhook"], body=_text("收到"))
    assert fake.sent[0].conversation_id == GROUP


# ---------------------------------------------------------------- H5 login (§4)


def test_auth_code_gives_the_userid_once(client: DingTalkClient, fake: FakeDingTalk) -> None:
    code = fake.new_auth_code("user042")
    assert client.userid_from_auth_code(code) == "user042"
    with pytest.raises(DingTalkError) as info:
        client.userid_from_auth_code(code)
    assert (info.value.code, info.value.retryable) == ("40078", False)


def test_auth_code_expires_after_five_minutes(client: DingTalkClient, fake: FakeDingTalk) -> None:
    code = fake.new_auth_code("user042")
    fake.advance(301)
    with pytest.raises(DingTalkError) as info:
        client.userid_from_auth_code(code)
    assert info.value.code == "40078"


def test_oapi_token_is_cached_and_refreshed_once_when_stale(
    client: DingTalkClient, fake: FakeDingTalk
) -> None:
    assert client.userid_from_auth_code(fake.new_auth_code("a")) == "a"
    assert client.userid_from_auth_code(fake.new_auth_code("b")) == "b"
    assert fake.request_count("/gettoken") == 1
    fake.expire_tokens()
    assert client.userid_from_auth_code(fake.new_auth_code("c")) == "c"
    assert fake.request_count("/gettoken") == 2


# ---------------------------------------------------------------- cards (§3.4)


def test_group_card_is_created_and_updated(client: DingTalkClient, fake: FakeDingTalk) -> None:
    client.create_card(
        out_track_id="leave-1",
        template_id="tpl.schema",
        card_param_map={"title": "请假申请", "status": "待审批"},
        open_conversation_id=GROUP,
        at_user_ids={"sec001": "李书记"},
    )
    card = fake.cards["leave-1"]
    assert (card.space_type, card.space_id, card.callback_type) == ("IM_GROUP", GROUP, "STREAM")
    assert card.at_user_ids == {"sec001": "李书记"}
    assert card.delivered
    client.update_card(out_track_id="leave-1", card_param_map={"status": "已批准"})
    assert fake.cards["leave-1"].card_param_map == {"title": "请假申请", "status": "已批准"}


def test_single_chat_card(client: DingTalkClient, fake: FakeDingTalk) -> None:
    client.create_card(
        out_track_id="leave-2",
        template_id="tpl.schema",
        card_param_map={"status": "待审批"},
        user_id="sec001",
    )
    card = fake.cards["leave-2"]
    assert (card.space_type, card.space_id, card.delivered) == ("IM_ROBOT", "sec001", True)


def test_card_delivery_failure_is_an_error(client: DingTalkClient, fake: FakeDingTalk) -> None:
    fake.add_group("cidNoRobot", robot_member=False)
    with pytest.raises(DingTalkError) as info:
        client.create_card(
            out_track_id="leave-3",
            template_id="tpl.schema",
            card_param_map={"status": "待审批"},
            open_conversation_id="cidNoRobot",
        )
    assert info.value.code == "card.deliverFailed"


def test_card_arguments_are_checked_locally(client: DingTalkClient) -> None:
    with pytest.raises(ValueError):
        client.create_card(out_track_id="x", template_id="t", card_param_map={})
    with pytest.raises(ValueError):
        client.create_card(
            out_track_id="x",
            template_id="t",
            card_param_map={},
            open_conversation_id=GROUP,
            user_id="u",
        )
    with pytest.raises(TypeError):
        client.create_card(
            out_track_id="x",
            template_id="t",
            card_param_map={"count": 3},  # type: ignore[dict-item]
            open_conversation_id=GROUP,
        )


def test_updating_an_unknown_card_fails(client: DingTalkClient) -> None:
    with pytest.raises(DingTalkError) as info:
        client.update_card(out_track_id="nope", card_param_map={"status": "x"})
    assert (info.value.status, info.value.code) == (404, "card.notFound")


# ---------------------------------------------------------------- no secrets in logs


def test_no_secret_or_token_reaches_the_logs(
    client: DingTalkClient, fake: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook = fake.add_custom_robot("robot-token-xyz", secret="SECrobotsecret")
    session_url, _ = fake.new_session_webhook()
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "1"})
    assert client.userid_from_auth_code(fake.new_auth_code("u1")) == "u1"
    fake.expire_tokens()
    client.send_group(open_conversation_id=GROUP, msg_key="sampleText", msg_param={"content": "2"})
    assert client.userid_from_auth_code(fake.new_auth_code("u2")) == "u2"
    client.send_custom_robot(webhook=webhook, secret="SECrobotsecret", body=_text("ok"))
    with pytest.raises(DingTalkError) as info:
        client.send_custom_robot(webhook=webhook, secret="SECwrong", body=_text("bad"))
    client.send_session_webhook(url=session_url, body=_text("ok"))
    logged = caplog.text + str(info.value)
    assert "HTTP Request" in logged  # httpx did log the requests, with the credentials blanked
    secrets = [CLIENT_SECRET, "SECrobotsecret", "robot-token-xyz", *fake.issued_tokens()]
    secrets.append(session_url.split("session=")[1])
    assert len(secrets) == 8  # two app tokens and two oapi tokens were issued
    assert [secret for secret in secrets if secret in logged] == []
    assert CLIENT_SECRET not in repr(client)


def test_the_fake_can_answer_as_late_as_the_real_api(
    client: DingTalkClient, fake: FakeDingTalk
) -> None:
    def timed_send() -> float:
        started = time.perf_counter()
        client.send_group(open_conversation_id=GROUP, msg_key="sampleText",
                          msg_param={"content": "迟到的回答"})
        return time.perf_counter() - started

    timed_send()  # the token, once
    fake.set_latency(0.25)
    assert timed_send() >= 0.25
    fake.reset()
    fake.add_group(GROUP)
    assert timed_send() < 0.25
