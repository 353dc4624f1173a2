"""The fake WeCom itself: qyapi, OAuth, group robots, callbacks and the AI-bot long connection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from defusedxml import ElementTree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from bot.fakes.wecom import FakeWeCom
from bot.fakes.wecom_crypto import OK, WXBizJsonMsgCrypt, WXBizMsgCrypt

CORP_ID = "wwfakecorp0001"
AGENT_ID = 1000002
SECRET = "app-secret-0001"
TOKEN = "apptoken123"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
AIBOT_ID = "aibFakeBot01"
AIBOT_SECRET = "aibot-secret-0001"
AIBOT_TOKEN = "aibottoken456"
AIBOT_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def server() -> Iterator[FakeWeCom]:
    with FakeWeCom.running(
        corp_id=CORP_ID,
        agent_id=AGENT_ID,
        secret=SECRET,
        token=TOKEN,
        encoding_aes_key=AES_KEY,
        aibot_id=AIBOT_ID,
        aibot_secret=AIBOT_SECRET,
        aibot_token=AIBOT_TOKEN,
        aibot_encoding_aes_key=AIBOT_AES_KEY,
    ) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeWeCom) -> Iterator[FakeWeCom]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def http(fake: FakeWeCom) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as client:
        yield client


def _token(http: httpx.Client) -> str:
    body = http.get("/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}).json()
    assert body["errcode"] == 0, body
    return body["access_token"]


def _card(task_id: str = "leave-123-v1", *, buttons: int = 2) -> dict[str, Any]:
    return {
        "card_type": "button_interaction",
        "task_id": task_id,
        "source": {"desc": "党支部积分"},
        "main_title": {"title": "请假审批", "desc": "张三 · 5月组织生活会"},
        "sub_title_text": "事由：出差",
        "button_list": [
            {"text": f"按钮{i}", "style": 1, "key": f"key{i}:123"} for i in range(buttons)
        ],
    }


def _send(http: httpx.Client, token: str, **body: Any) -> dict:
    payload = {"touser": "zhangsan", "agentid": AGENT_ID, "msgtype": "text"} | body
    if payload["msgtype"] == "text" and "text" not in payload:
        payload["text"] = {"content": "你好"}
    return http.post("/cgi-bin/message/send", params={"access_token": token}, json=payload).json()


# --------------------------------------------------------------------------- token


def test_gettoken_errors_and_expiry(fake: FakeWeCom, http: httpx.Client) -> None:
    token = _token(http)
    again = http.get("/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}).json()
    assert again["access_token"] == token and again["errmsg"] == "ok"
    bad = http.get("/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": "nope"}).json()
    assert bad["errcode"] == 40001 and bad["errmsg"].startswith("invalid credential, hint: [")
    assert "devtool/query?e=40001" in bad["errmsg"]
    corp = http.get("/cgi-bin/gettoken", params={"corpid": "wwother", "corpsecret": SECRET})
    assert corp.status_code == 200 and corp.json()["errcode"] == 40013
    fake.add_user("zhangsan")
    assert _send(http, "garbage")["errcode"] == 40014
    assert _send(http, token)["errcode"] == 0
    fake.expire_tokens()
    assert _send(http, token)["errcode"] == 42001
    fresh = _token(http)
    assert fresh != token and _send(http, fresh)["errcode"] == 0
    fake.advance(7201)
    assert _send(http, fresh)["errcode"] == 42001
    assert fake.requests("/cgi-bin/gettoken") == 5


# --------------------------------------------------------------------------- message/send


def test_message_send_recipients_and_limits(fake: FakeWeCom, http: httpx.Client) -> None:
    token = _token(http)
    fake.add_user("zhangsan")
    ok = _send(http, token, touser="zhangsan|ghost")
    assert ok["errcode"] == 0 and ok["invaliduser"] == "ghost" and ok["msgid"]
    assert "response_code" not in ok
    none = _send(http, token, touser="ghost|nobody")
    assert none["errcode"] == 81013 and none["invaliduser"] == "ghost|nobody"
    assert _send(http, token, agentid=1)["errcode"] == 40056
    long_text = _send(http, token, text={"content": "积" * 683})  # 2049 bytes
    assert long_text["errcode"] == 40058
    assert long_text["errmsg"].startswith("text.content exceed max length 2048")
    assert _send(http, token, msgtype="markdown", markdown={"content": "**hi**"})["errcode"] == 0
    assert [(s.kind, s.target, s.msgtype, s.text) for s in fake.sent] == [
        ("app", "zhangsan|ghost", "text", "你好"),
        ("app", "zhangsan", "markdown", "**hi**"),
    ]


def test_template_card_send_click_update(fake: FakeWeCom, http: httpx.Client) -> None:
    token = _token(http)
    fake.add_user("secretary")
    sent = _send(http, token, touser="secretary", msgtype="template_card", template_card=_card())
    assert sent["errcode"] == 0 and sent["response_code"]
    card = fake.cards["leave-123-v1"]
    assert card.response_code == sent["response_code"] and card.touser == "secretary"
    assert fake.sent[0].text.splitlines()[:3] == ["请假审批", "张三 · 5月组织生活会", "事由：出差"]

    dup = _send(http, token, touser="secretary", msgtype="template_card", template_card=_card())
    assert dup["errcode"] == 40058 and "duplicate task_id" in dup["errmsg"]
    bad_id = _send(
        http, token, touser="secretary", msgtype="template_card", template_card=_card("leave 1")
    )
    assert bad_id["errcode"] == 40058
    seven = _card("t7", buttons=7)
    too_many = _send(http, token, touser="secretary", msgtype="template_card", template_card=seven)
    assert too_many["errcode"] == 40058

    # The click gives a new response_code; the update with it works once.
    query, body = fake.click_card(task_id="leave-123-v1", userid="secretary", key="key0:123")
    crypt = WXBizMsgCrypt(TOKEN, AES_KEY, CORP_ID)
    code, xml_text = crypt.decrypt_msg(
        body, query["msg_signature"], query["timestamp"], query["nonce"]
    )
    assert code == OK and xml_text is not None
    event = ElementTree.fromstring(xml_text)
    assert event.findtext("Event") == "template_card_event"
    assert event.findtext("EventKey") == "key0:123"
    assert event.findtext("TaskId") == "leave-123-v1"
    assert event.findtext("CardType") == "button_interaction"
    assert event.findtext("AgentID") == str(AGENT_ID)
    click_code = event.findtext("ResponseCode")
    assert click_code == fake.cards["leave-123-v1"].response_code != sent["response_code"]

    def update(code: str, **change: Any) -> dict:
        payload = {"userids": ["secretary"], "agentid": AGENT_ID, "response_code": code} | change
        return http.post(
            "/cgi-bin/message/update_template_card", params={"access_token": token}, json=payload
        ).json()

    assert update(click_code, button={"replace_name": "已批准"})["errcode"] == 0
    assert update(click_code, button={"replace_name": "again"})["errcode"] == 60140
    assert update("unknown", button={"replace_name": "x"})["errcode"] == 60140
    assert fake.cards["leave-123-v1"].replaced_button == "已批准"
    # The send's own code is valid too (single use), e.g. for a whole-card replacement...
    new_card = _card() | {"main_title": {"title": "已处理"}}
    assert update(sent["response_code"], template_card=new_card)["errcode"] == 0
    card = fake.cards["leave-123-v1"]
    assert card.updated_card == new_card and card.updates == 2
    assert [(s.kind, s.target, s.msgtype, s.text) for s in fake.sent[1:]] == [
        ("update_card", "leave-123-v1", "button", "已批准"),
        ("update_card", "leave-123-v1", "template_card", "已处理\n事由：出差"),
    ]
    # ...and codes expire after 72 hours.
    query, body = fake.click_card(task_id="leave-123-v1", userid="secretary", key="key1:123")
    fake.advance(72 * 3600 + 1)
    token = _token(http)  # the old one expired long ago
    assert (
        update(fake.cards["leave-123-v1"].response_code, button={"replace_name": "x"})["errcode"]
        == 60140
    )


def test_appchat(fake: FakeWeCom, http: httpx.Client) -> None:
    token = _token(http)
    for user in ("a1", "a2", "a3"):
        fake.add_user(user)
    params = {"access_token": token}

    def create(**body: Any) -> dict:
        return http.post("/cgi-bin/appchat/create", params=params, json=body).json()

    assert create(name="一支部", owner="a1", userlist=["a1"])["errcode"] == 40058
    assert create(name="一支部", userlist=["a1", "ghost"])["errcode"] == 86216
    assert create(name="一支部", userlist=["a1", "a2"], chatid="bad-id")["errcode"] == 86001
    made = create(name="一支部", owner="a1", userlist=["a1", "a2", "a3"], chatid="branch1")
    assert made == {"errcode": 0, "errmsg": "ok", "chatid": "branch1"}
    assert create(name="x", userlist=["a1", "a2"], chatid="branch1")["errcode"] == 86215

    def send(**body: Any) -> dict:
        return http.post("/cgi-bin/appchat/send", params=params, json=body).json()

    assert send(chatid="branch1", msgtype="markdown", markdown={"content": "**榜单**"}) == {
        "errcode": 0,
        "errmsg": "ok",
    }
    card = send(chatid="branch1", msgtype="template_card", template_card=_card())
    assert card["errcode"] == 40008
    assert send(chatid="nochat", msgtype="text", text={"content": "x"})["errcode"] == 86003
    assert [(s.kind, s.target, s.text) for s in fake.sent] == [("appchat", "branch1", "**榜单**")]


# --------------------------------------------------------------------------- group robot


def test_webhook_key_rate_and_limits(fake: FakeWeCom) -> None:
    url = fake.add_webhook("robot-key-1")
    assert url == f"{fake.base_url}/cgi-bin/webhook/send?key=robot-key-1"
    with httpx.Client(timeout=5) as client:
        unknown = client.post(
            f"{fake.base_url}/cgi-bin/webhook/send?key=nope", json={"msgtype": "text"}
        )
        assert unknown.status_code == 200
        assert unknown.json()["errcode"] == 93000
        assert unknown.json()["errmsg"].startswith("invalid webhook url, hint: [")

        too_long = client.post(
            url, json={"msgtype": "markdown", "markdown": {"content": "x" * 4097}}
        )
        assert too_long.json()["errcode"] == 40058
        assert "markdown.content exceed max length 4096" in too_long.json()["errmsg"]
        long_text = client.post(url, json={"msgtype": "text", "text": {"content": "x" * 2049}})
        assert long_text.json()["errcode"] == 40058

        image = {"base64": base64.b64encode(PNG).decode(), "md5": hashlib.md5(b"x").hexdigest()}
        mismatch = client.post(url, json={"msgtype": "image", "image": image})
        assert mismatch.json()["errcode"] == 301019
        gif = b"GIF89a" + b"\x00" * 16
        not_png = {"base64": base64.b64encode(gif).decode(), "md5": hashlib.md5(gif).hexdigest()}
        assert (
            client.post(url, json={"msgtype": "image", "image": not_png}).json()["errcode"] == 40005
        )
        good_image = image | {"md5": hashlib.md5(PNG).hexdigest()}
        assert client.post(url, json={"msgtype": "image", "image": good_image}).json() == {
            "errcode": 0,
            "errmsg": "ok",
        }
        for i in range(19):
            body = {"msgtype": "markdown", "markdown": {"content": f"第{i}条"}}
            assert client.post(url, json=body).json()["errcode"] == 0
        limited = client.post(url, json={"msgtype": "text", "text": {"content": "21st"}}).json()
        assert limited["errcode"] == 45009
        assert limited["errmsg"].startswith("api freq out of limit")
        fake.advance(61)
        again = client.post(url, json={"msgtype": "text", "text": {"content": "later"}})
        assert again.json()["errcode"] == 0
    sent = fake.sent
    assert len(sent) == 21 and {s.kind for s in sent} == {"webhook"}
    assert sent[0].msgtype == "image" and sent[-1].text == "later"
    assert {s.target for s in sent} == {"robot-key-1"}


# --------------------------------------------------------------------------- H5 login


def test_oauth_authorize_and_login_codes(fake: FakeWeCom, http: httpx.Client) -> None:
    token = _token(http)
    params = {
        "appid": CORP_ID,
        "redirect_uri": "http://127.0.0.1:8000/h5/checkin?activity=7",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "abc123",
        "agentid": str(AGENT_ID),
    }
    no_user = http.get("/connect/oauth2/authorize", params=params)
    assert no_user.status_code == 400
    fake.login_as("lisi")
    response = http.get("/connect/oauth2/authorize", params=params)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.hostname, location.port, location.path) == ("127.0.0.1", 8000, "/h5/checkin")
    query = parse_qs(location.query)
    assert query["activity"] == ["7"] and query["state"] == ["abc123"]
    code = query["code"][0]
    info = http.get("/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code})
    assert info.json() == {"errcode": 0, "errmsg": "ok", "userid": "lisi"}
    reused = http.get("/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code})
    assert reused.json()["errcode"] == 40029
    assert reused.json()["errmsg"].startswith("invalid code")

    legacy_code = fake.issue_login_code("wangwu")
    legacy = http.get(
        "/cgi-bin/user/getuserinfo", params={"access_token": token, "code": legacy_code}
    ).json()
    assert legacy == {"errcode": 0, "errmsg": "ok", "UserId": "wangwu", "DeviceId": ""}
    again = http.get(
        "/cgi-bin/user/getuserinfo", params={"access_token": token, "code": legacy_code}
    ).json()
    assert again["errcode"] == 40029
    late = fake.issue_login_code("wangwu")
    fake.advance(301)
    expired = http.get("/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": late})
    assert expired.json()["errcode"] == 40029

    evil = params | {"redirect_uri": "https://evil.example.com/steal"}
    refused = http.get("/connect/oauth2/authorize", params=evil)
    assert refused.status_code == 400 and "可信域名" in refused.text
    assert (
        http.get("/connect/oauth2/authorize", params=params | {"state": "a-b"}).status_code == 400
    )
    assert (
        http.get("/connect/oauth2/authorize", params=params | {"agentid": "1"}).status_code == 400
    )


# --------------------------------------------------------------------------- callback driver


@contextlib.contextmanager
def _serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def test_app_callback_retries_until_200(fake: FakeWeCom) -> None:
    crypt = WXBizMsgCrypt(TOKEN, AES_KEY, CORP_ID)
    seen: list[tuple[str, str]] = []

    async def callback(request: Request) -> Response:
        q = request.query_params
        if request.method == "GET":
            code, echo = crypt.verify_url(
                q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]
            )
            assert code == OK
            return PlainTextResponse(echo or "")
        code, xml_text = crypt.decrypt_msg(
            await request.body(), q["msg_signature"], q["timestamp"], q["nonce"]
        )
        assert code == OK and xml_text is not None
        root = ElementTree.fromstring(xml_text)
        seen.append((root.findtext("MsgId") or "", root.findtext("Content") or ""))
        if len(seen) < 3:
            return PlainTextResponse("busy", status_code=500)
        code, reply = crypt.encrypt_msg("<xml><Content>收到</Content></xml>", q["nonce"])
        assert code == OK and reply is not None
        return Response(reply, media_type="text/xml")

    app = Starlette(routes=[Route("/wecom/callback", callback, methods=["GET", "POST"])])
    with _serve(app) as base:
        url = f"{base}/wecom/callback"
        query, expected = fake.app_verify_query()
        verified = fake.deliver_app_callback(url, query)
        assert verified.status_code == 200 and verified.text == expected
        assert fake.last_delivery_attempts == 1

        query, body = fake.app_text_request(from_user="zhangsan", content="/我的积分", msg_id="42")
        response = fake.deliver_app_callback(url, query, body)
        assert response.status_code == 200
        assert fake.last_delivery_attempts == 3
        assert seen == [("42", "/我的积分")] * 3  # the same MsgId each time
        assert fake.decrypt_app_reply(response.text) == "<xml><Content>收到</Content></xml>"

    # Always failing: 1 + 3 tries, the last response returned.
    async def broken(request: Request) -> Response:
        return PlainTextResponse("no", status_code=503)

    with _serve(Starlette(routes=[Route("/cb", broken, methods=["POST"])])) as base:
        response = fake.deliver_app_callback(f"{base}/cb", query, body)
        assert response.status_code == 503 and fake.last_delivery_attempts == 4


def test_app_callback_timeout_and_connection_failure(fake: FakeWeCom) -> None:
    calls: list[float] = []

    async def slow_once(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            await asyncio.sleep(0.5)
        return PlainTextResponse("")

    query, body = fake.app_text_request(from_user="zhangsan", content="hi")
    with _serve(Starlette(routes=[Route("/cb", slow_once, methods=["POST"])])) as base:
        response = fake.deliver_app_callback(f"{base}/cb", query, body, timeout=0.2)
        assert response.status_code == 200 and fake.last_delivery_attempts == 2
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/cb"
    with pytest.raises(httpx.ConnectError):
        fake.deliver_app_callback(dead, query, body)
    assert fake.last_delivery_attempts == 4


# --------------------------------------------------------------------------- AI bot, HTTP mode


def test_aibot_http_callback_and_response_url(fake: FakeWeCom) -> None:
    crypt = WXBizJsonMsgCrypt(AIBOT_TOKEN, AIBOT_AES_KEY, "")
    query, expected = fake.aibot_verify_query("echo-123")
    assert crypt.verify_url(
        query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
    ) == (OK, expected)

    query, body = fake.aibot_text_request(from_user="zhangsan", content="/我的积分", chat_id="wrk1")
    code, plain = crypt.decrypt_msg(
        body, query["msg_signature"], query["timestamp"], query["nonce"]
    )
    assert code == OK and plain is not None
    message = json.loads(plain)
    assert message["chattype"] == "group" and message["chatid"] == "wrk1"
    assert message["aibotid"] == AIBOT_ID and message["from"] == {"userid": "zhangsan"}
    assert message["msgtype"] == "text"
    assert message["text"]["content"] == "@党员积分助手 /我的积分"
    single = json.loads(
        crypt.decrypt_msg(*_decrypt_args(*fake.aibot_text_request(from_user="u", content="hi")))[1]
    )
    assert single["chattype"] == "single" and "chatid" not in single
    assert single["text"]["content"] == "hi"

    url = message["response_url"]
    assert url.startswith(f"{fake.base_url}/aibot/response/")
    with httpx.Client(timeout=5) as client:
        wrong = client.post(url, json={"msgtype": "voice"})
        assert wrong.json()["errcode"] == 40008
        ok = client.post(url, json={"msgtype": "markdown", "markdown": {"content": "**120 分**"}})
        assert ok.json() == {"errcode": 0, "errmsg": "ok"}
        used = client.post(url, json={"msgtype": "markdown", "markdown": {"content": "again"}})
        assert used.json()["errcode"] == 40058
        late_url = fake.issue_response_url()
        fake.advance(3601)
        late = client.post(late_url, json={"msgtype": "markdown", "markdown": {"content": "x"}})
        assert late.json()["errcode"] == 40058
    token = url.rsplit("/", 1)[1]
    assert [(s.kind, s.target, s.text) for s in fake.sent] == [
        ("response_url", token, "**120 分**")
    ]

    code, envelope = crypt.encrypt_msg(json.dumps({"msgtype": "text", "text": {"content": "好"}}))
    assert code == OK and envelope is not None
    assert fake.decrypt_aibot_reply(json.loads(envelope)) == {
        "msgtype": "text",
        "text": {"content": "好"},
    }
    with pytest.raises(ValueError):
        fake.decrypt_aibot_reply(json.loads(envelope) | {"nonce": "1"})


def _decrypt_args(query: dict[str, str], body: bytes) -> tuple[bytes, str, str, str]:
    return body, query["msg_signature"], query["timestamp"], query["nonce"]


# --------------------------------------------------------------------------- AI bot, WebSocket


def _frame(cmd: str, req_id: str, body: dict | None = None) -> str:
    frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
    if body is not None:
        frame["body"] = body
    return json.dumps(frame, ensure_ascii=False)


def _recv(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=3))


@contextlib.contextmanager
def _subscribed(fake: FakeWeCom) -> Iterator[ClientConnection]:
    with ws_connect(fake.ws_url, open_timeout=3) as ws:
        credentials = {"bot_id": AIBOT_ID, "secret": AIBOT_SECRET}
        ws.send(_frame("aibot_subscribe", "aibot_subscribe_1_ab", credentials))
        ack = _recv(ws)
        assert ack == {"headers": {"req_id": "aibot_subscribe_1_ab"}, "errcode": 0, "errmsg": "ok"}
        yield ws


def test_ws_subscribe_failures_close(fake: FakeWeCom) -> None:
    with ws_connect(fake.ws_url, open_timeout=3) as ws:
        ws.send(_frame("aibot_subscribe", "s1", {"bot_id": AIBOT_ID, "secret": "wrong"}))
        ack = _recv(ws)
        assert ack["headers"] == {"req_id": "s1"} and ack["errcode"] == 40001
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=3)
    with ws_connect(fake.ws_url, open_timeout=3) as ws:
        ws.send(_frame("ping", "ping_1"))
        assert _recv(ws)["errcode"] != 0
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=3)
    assert fake.live_connections() == 0


def test_ws_ping_push_respond_and_send(fake: FakeWeCom) -> None:
    with _subscribed(fake) as ws:
        assert fake.live_connections() == 1
        ws.send(_frame("ping", "ping_2_cd"))
        assert _recv(ws) == {"headers": {"req_id": "ping_2_cd"}, "errcode": 0, "errmsg": "ok"}

        req_id = fake.push_aibot_message(from_user="zhangsan", content="/积分榜", chat_id="wrk9")
        pushed = _recv(ws)
        assert pushed["cmd"] == "aibot_msg_callback" and pushed["headers"] == {"req_id": req_id}
        assert pushed["body"]["text"]["content"] == "@党员积分助手 /积分榜"
        assert pushed["body"]["chattype"] == "group" and pushed["body"]["chatid"] == "wrk9"

        stream = {"msgtype": "stream", "stream": {"id": "s1", "finish": False, "content": "…"}}
        ws.send(_frame("aibot_respond_msg", req_id, stream))
        assert _recv(ws) == {"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"}
        done = {"msgtype": "stream", "stream": {"id": "s1", "finish": True, "content": "**榜单**"}}
        ws.send(_frame("aibot_respond_msg", req_id, done))
        assert _recv(ws)["errcode"] == 0
        replies = fake.wait_responded(req_id)
        assert [(r.kind, r.target, r.msgtype, r.text) for r in replies] == [
            ("aibot_respond", req_id, "stream", "…"),
            ("aibot_respond", req_id, "stream", "**榜单**"),
        ]

        ws.send(_frame("aibot_respond_msg", "made_up_req", done))
        unknown = _recv(ws)
        assert unknown["headers"] == {"req_id": "made_up_req"} and unknown["errcode"] == 846605

        send = {"chatid": "wrk9", "msgtype": "markdown", "markdown": {"content": "月度榜单"}}
        ws.send(_frame("aibot_send_msg", "aibot_send_msg_3_ef", send))
        assert _recv(ws)["errcode"] == 0
        card = {"chatid": "wrk9", "msgtype": "template_card", "template_card": _card("ai-1")}
        ws.send(_frame("aibot_send_msg", "aibot_send_msg_4_ef", card))
        assert _recv(ws)["errcode"] == 0
        assert fake.cards["ai-1"].source == "aibot"

        event_req = fake.click_aibot_card(task_id="ai-1", userid="secretary", key="key0:123")
        event = _recv(ws)
        assert event["cmd"] == "aibot_event_callback"
        assert event["body"]["event"] == {
            "eventtype": "template_card_event",
            "event_key": "key0:123",
            "task_id": "ai-1",
        }
        update = {"response_type": "update_template_card", "template_card": _card("ai-1")}
        ws.send(_frame("aibot_respond_update_msg", event_req, update))
        assert _recv(ws)["errcode"] == 0
        assert fake.wait_responded(event_req)[0].kind == "update_card"
        assert fake.cards["ai-1"].updates == 1
    kinds = [(s.kind, s.target) for s in fake.sent]
    assert ("aibot_send", "wrk9") in kinds and kinds.count(("aibot_send", "wrk9")) == 2


def test_ws_second_connection_kicks_the_first(fake: FakeWeCom) -> None:
    with _subscribed(fake) as old, _subscribed(fake) as new:
        kicked = _recv(old)
        assert kicked["cmd"] == "aibot_event_callback"
        assert kicked["body"]["event"] == {"eventtype": "disconnected_event"}
        assert kicked["body"]["msgtype"] == "event" and kicked["headers"]["req_id"]
        with pytest.raises(ConnectionClosed):
            old.recv(timeout=3)
        fake.wait_for(lambda: fake.live_connections() == 1, what="one live connection")
        req_id = fake.push_aibot_event(from_user="zhangsan", eventtype="enter_chat")
        assert _recv(new)["headers"]["req_id"] == req_id
    assert fake.subscribes == 2 and fake.requests("/aibot") == 2


def test_ws_closed_without_pings(fake: FakeWeCom) -> None:
    fake.ping_timeout_s = 0.3
    try:
        with _subscribed(fake) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=3)
            assert time.monotonic() - started < 2
        assert fake.live_connections() == 0
        with pytest.raises(RuntimeError):
            fake.push_aibot_message(from_user="u", content="x")
    finally:
        fake.ping_timeout_s = 70.0
