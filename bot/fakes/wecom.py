"""A faithful fake WeCom (platforms.md §5–§10, "Fake WeCom") on 127.0.0.1, for tests and scripts.

Start it with `FakeWeCom.running(corp_id=..., agent_id=..., ...)` and point the app's WeCom API
base (qyapi.weixin.qq.com and open.weixin.qq.com) at `.base_url` and the AI-bot long connection
(wss://openws.work.weixin.qq.com) at `.ws_url`. One server answers:

- `/cgi-bin/gettoken`, `/cgi-bin/message/send`, `/cgi-bin/message/update_template_card`,
  `/cgi-bin/appchat/create`, `/cgi-bin/appchat/send`, `/cgi-bin/webhook/send`,
  `/cgi-bin/auth/getuserinfo`, `/cgi-bin/user/getuserinfo` (qyapi);
- `/connect/oauth2/authorize` (open.weixin.qq.com);
- `/aibot/response/{token}` (the AI bot's `response_url`; the real one's shape,
  `/cgi-bin/aibot/response?response_code=`, is answered too);
- the WebSocket `/aibot` (the AI bot's long connection, frames `{cmd, headers:{req_id}, body}`).

It also drives the app: it builds encrypted app callbacks (XML, receiveid = corpid) and AI-bot
callbacks (JSON, receiveid = ""), with its own crypto (`bot.fakes.wecom_crypto`, independent of
the product's), delivers them over real HTTP with WeCom's retry rule, and pushes AI-bot frames.

Business errors are HTTP 200 with a non-zero `errcode`, and `errmsg` carries the real suffix
(", hint: [...], from ip: ..., more info at https://open.work.weixin.qq.com/devtool/query?e=N").
Codes used as the platform documents or as observed (platforms.md §6, §7): 40001 invalid
credential, 40014 invalid access_token, 42001 access_token expired, 41001 access_token missing,
40056 invalid agentid, 81013 all recipients invalid, 60140 bad response_code, 93000 invalid
webhook url, 45009 api freq out of limit, 40029 invalid code, 40058 invalid request parameter
(observed for `markdown.content exceed max length 4096`), 40008 invalid message type,
44004 empty content, 47001 data format error, 846605 invalid req_id. The others are our pick,
because no official source gives them (UNCONFIRMED):

- `gettoken`, unknown corpid: 40013 `invalid corpid` (as in WeCom's global error-code list).
- `message/send`, text or markdown content over 2048 bytes: 40058
  `text.content exceed max length 2048` (the doc says such content is truncated; we refuse, so
  that the app's own limit is tested).
- `message/send`, a template_card task_id already used: 40058 `duplicate task_id`.
- `message/send`, template_card fields out of range (card_type, task_id charset or length,
  button_list 1..6, key <= 1024 bytes, ...): 40058.
- `update_template_card`, unknown, used or expired (72 h) response_code: 60140
  `invalid response_code` (the code is observed in third-party code; the wording is ours).
- `appchat/*`: bad chatid 86001, chatid in use 86215, unknown chatid 86003, unknown member 86216,
  userlist not 2..500 40058.
- `appchat/send`, msgtype template_card: 40008 `invalid message type`.
- `webhook/send`, text over 2048 bytes or markdown over 4096 bytes: 40058
  `<type>.content exceed max length N. invalid Request Parameter` (the markdown case observed).
- `webhook/send`, image md5 not the md5 of the decoded bytes: 301019 `media md5 not match`
  (the wording observed); over 2 MB 40009; not PNG/JPG 40005; base64 that does not decode 40058.
- response_url, unknown, used or expired (1 h): 40058 `invalid response_code`; markdown over
  20480 bytes: 40058.
- WebSocket: a first frame that is not `aibot_subscribe` 40058, a wrong bot_id or secret 40001
  `invalid credential` (each then closed); an unknown cmd 40058 `invalid cmd`.
- oauth2 authorize: a redirect_uri outside the trusted domain gets an HTTP 400 error page with
  50001 `redirect_uri 需使用应用可信域名`; no `login_as` user gets a 400 page too.

Time: tokens (7200 s), login codes (5 min), response codes (72 h), response_urls (1 h) and the
webhook rate window (20 per sliding minute) follow `clock` plus `advance()`; the WebSocket
heartbeat deadline (no `ping` for 70 s closes the connection) follows the real monotonic clock.
Tokens, keys and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx
from defusedxml import ElementTree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from bot.fakes.serving import ThreadedFake, wait_until_stopped
from bot.fakes.wecom_crypto import OK, WXBizJsonMsgCrypt, WXBizMsgCrypt, sha1_signature

__all__ = ["FakeTemplateCard", "FakeWeCom", "WeComSent"]

log = logging.getLogger(__name__)

TOKEN_TTL_S = 7200
LOGIN_CODE_TTL_S = 300
RESPONSE_CODE_TTL_S = 72 * 3600
RESPONSE_URL_TTL_S = 3600
WEBHOOK_RATE_PER_MIN = 20
APP_CONTENT_MAX_BYTES = 2048
WEBHOOK_TEXT_MAX_BYTES = 2048
WEBHOOK_MARKDOWN_MAX_BYTES = 4096
AIBOT_CONTENT_MAX_BYTES = 20480
IMAGE_MAX_BYTES = 2 * 1024 * 1024
TASK_ID_MAX_BYTES = 128
BUTTON_KEY_MAX_BYTES = 1024
PING_TIMEOUT_S = 70.0
CALLBACK_TIMEOUT_S = 5.0
CALLBACK_RETRIES = 3

TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]+")
CHATID_RE = re.compile(r"[0-9a-zA-Z]{1,32}")
STATE_RE = re.compile(r"[a-zA-Z0-9]{0,128}")

CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
INTERACTIVE_CARD_TYPES = frozenset(
    {"button_interaction", "vote_interaction", "multiple_interaction"}
)
APP_MSGTYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "markdown",
        "miniprogram_notice",
        "template_card",
    }
)
APPCHAT_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"}
)
WEBHOOK_MSGTYPES = frozenset(
    {"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"}
)
WEBHOOK_CARD_TYPES = frozenset({"text_notice", "news_notice"})
AIBOT_SEND_MSGTYPES = frozenset({"markdown", "template_card", "file", "image", "voice", "video"})
AIBOT_RESPOND_MSGTYPES = frozenset(
    {"stream", "stream_with_template_card", "template_card", "markdown", "text"}
    | {"file", "image", "voice", "video"}
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPG_MAGIC = b"\xff\xd8\xff"


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class WeComSent:
    """One message the app under test sent, through any channel."""

    # "app" (message/send), "appchat", "webhook", "response_url", "aibot_respond" (also
    # aibot_respond_welcome_msg), "aibot_send", "update_card" (update_template_card or
    # aibot_respond_update_msg)
    kind: str
    # touser / chatid / webhook key / response_url token / req_id; task_id for "update_card"
    target: str
    msgtype: str  # for "update_card": "button" or "template_card"
    body: dict
    req_id: str = ""  # the WS frame's req_id, for the AI-bot kinds
    cmd: str = ""  # the WS cmd, for the AI-bot kinds
    at: float = 0.0  # business time, seconds

    @property
    def text(self) -> str:
        """The human-readable content, whatever the msgtype (for assertions)."""
        return _message_text(self.body)


@dataclass
class FakeTemplateCard:
    """A template card the app (or the AI bot) sent, as the fake holds it."""

    task_id: str
    touser: str  # the app's touser, or the AI bot's chatid
    card: dict
    response_code: str  # the newest usable one (from the send, then from the latest click)
    replaced_button: str | None = None  # last button.replace_name applied
    updated_card: dict | None = None  # last full template_card applied
    updates: int = 0
    source: str = "app"  # "app" | "aibot"


# --------------------------------------------------------------------------- helpers


def _opaque(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def _digits(n: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (n - 1)) + 10 ** (n - 1))


def _utf8_len(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _card_text(card: Any) -> list[str]:
    if not isinstance(card, dict):
        return []
    parts: list[str] = []
    main = card.get("main_title") or {}
    emphasis = card.get("emphasis_content") or {}
    quote = card.get("quote_area") or {}
    for value in (
        main.get("title"),
        main.get("desc"),
        emphasis.get("title"),
        emphasis.get("desc"),
        quote.get("title"),
        quote.get("quote_text"),
        card.get("sub_title_text"),
    ):
        if isinstance(value, str) and value:
            parts.append(value)
    for item in card.get("horizontal_content_list") or []:
        if isinstance(item, dict):
            parts.append(f"{item.get('keyname', '')}: {item.get('value', '')}")
    for item in card.get("vertical_content_list") or []:
        if isinstance(item, dict):
            parts.extend(str(item[k]) for k in ("title", "desc") if item.get(k))
    return parts


def _message_text(body: dict) -> str:
    """The visible text of a message body (text/markdown/stream/template_card/news/update)."""
    parts: list[str] = []
    for key in ("text", "markdown", "markdown_v2", "stream"):
        content = (body.get(key) or {}).get("content") if isinstance(body.get(key), dict) else None
        if isinstance(content, str):
            parts.append(content)
    button = body.get("button")
    if isinstance(button, dict) and isinstance(button.get("replace_name"), str):
        parts.append(button["replace_name"])
    parts.extend(_card_text(body.get("template_card")))
    for key in ("news", "mpnews"):
        for article in (body.get(key) or {}).get("articles") or []:
            if isinstance(article, dict):
                parts.extend(str(article[k]) for k in ("title", "description") if article.get(k))
    textcard = body.get("textcard")
    if isinstance(textcard, dict):
        parts.extend(str(textcard[k]) for k in ("title", "description") if textcard.get(k))
    return "\n".join(parts)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def _error_page(code: int, message: str) -> HTMLResponse:
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>企业微信</title></head>"
        f"<body><h2>{escape(message)}</h2><p>错误码：{code}</p></body></html>"
    )
    return HTMLResponse(html, status_code=400)


# --------------------------------------------------------------------------- internal state


@dataclass
class _Conn:
    id: str
    ws: WebSocket
    last_ping: float  # monotonic
    authenticated: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


@dataclass
class _Push:
    req_id: str
    cmd: str
    body: dict
    conn_id: str
    pushed_at: float  # monotonic
    answered: threading.Event = field(default_factory=threading.Event)


# --------------------------------------------------------------------------- the fake


class FakeWeCom(ThreadedFake):
    """Fake qyapi.weixin.qq.com + open.weixin.qq.com + the AI-bot WebSocket; see `.sent`."""

    label = "fake WeCom"

    def _bound(self, port: int) -> None:
        super()._bound(port)
        self.ws_url = f"ws://127.0.0.1:{port}/aibot"

    def __init__(
        self,
        *,
        corp_id: str,
        agent_id: int,
        secret: str,
        token: str,
        encoding_aes_key: str,
        aibot_id: str,
        aibot_secret: str,
        aibot_token: str,
        aibot_encoding_aes_key: str,
        aibot_name: str = "党员积分助手",
        trusted_domain: str = "127.0.0.1",
        clock: Callable[[], float] = time.time,
        ping_timeout_s: float = PING_TIMEOUT_S,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = int(agent_id)
        self.aibot_id = aibot_id
        self.aibot_name = aibot_name
        self.trusted_domain = trusted_domain
        self.ping_timeout_s = ping_timeout_s
        self._secret = secret
        self._aibot_secret = aibot_secret
        # Own crypto (bot.fakes.wecom_crypto), never the product's.
        self._app_crypt = WXBizMsgCrypt(token, encoding_aes_key, corp_id)
        self._aibot_crypt = WXBizJsonMsgCrypt(aibot_token, aibot_encoding_aes_key, "")
        self.base_url = ""
        self.ws_url = ""
        self.last_delivery_attempts = 0  # tries made by the last deliver_app_callback
        self._clock = clock
        self._lock = threading.RLock()
        self._conns: dict[str, _Conn] = {}
        self._live: _Conn | None = None
        self._reset_state()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._init_serving()
        self._background: set[asyncio.Task[None]] = set()
        self.app = self._build_app()

    def __repr__(self) -> str:  # no secrets
        return f"FakeWeCom(base_url={self.base_url!r}, corp_id={self.corp_id!r})"

    # ------------------------------------------------------------------ lifecycle

    def _reset_state(self) -> None:
        with self._lock:
            self._offset_s = 0.0
            self._requests: Counter[str] = Counter()
            self._tokens: dict[str, float] = {}  # access_token -> expires at (business s)
            self._users: set[str] = set()
            self._login_user: str | None = None
            self._login_codes: dict[str, tuple[str, float]] = {}  # code -> (userid, expires)
            self._cards: dict[str, FakeTemplateCard] = {}
            self._response_codes: dict[str, tuple[str, float]] = {}  # code -> (task_id, exp)
            self._webhooks: dict[str, deque[float]] = {}  # key -> accepted send times
            self._appchats: dict[str, dict[str, Any]] = {}
            self._response_urls: dict[str, float] = {}  # token -> expires at
            self._sent: list[WeComSent] = []
            self._pushes: dict[str, _Push] = {}
            self._live = None
            self.connections_opened = 0
            self.subscribes = 0

    # ------------------------------------------------------------------ test set-up helpers

    def now(self) -> float:
        """The fake's business time in seconds (the clock plus everything `advance` added)."""
        return self._clock() + self._offset_s

    def advance(self, seconds: float) -> None:
        """Move business time forward (tokens, codes, response_urls, rate windows)."""
        with self._lock:
            self._offset_s += seconds

    def add_user(self, userid: str) -> None:
        """A corp member: a valid message/send recipient and appchat member."""
        with self._lock:
            self._users.add(userid)

    def add_webhook(self, key: str | None = None) -> str:
        """Register a group robot; returns its full webhook URL."""
        key = key or str(uuid.uuid4())
        with self._lock:
            self._webhooks.setdefault(key, deque())
        return f"{self.base_url}/cgi-bin/webhook/send?{urlencode({'key': key})}"

    def login_as(self, userid: str | None) -> None:
        """The member logged in to the WeCom client: OAuth authorize issues codes for them."""
        with self._lock:
            self._login_user = userid

    def issue_login_code(self, userid: str) -> str:
        """An OAuth code for `userid`: single use, valid 5 minutes, for both getuserinfo."""
        code = _opaque(32)
        with self._lock:
            self._login_codes[code] = (userid, self.now() + LOGIN_CODE_TTL_S)
        return code

    def expire_tokens(self) -> None:
        """Every issued access token now answers 42001."""
        with self._lock:
            past = self.now() - 1
            self._tokens = dict.fromkeys(self._tokens, past)

    def issue_response_url(self) -> str:
        """A fresh AI-bot response_url: single use, valid 1 hour."""
        token = _opaque(24)
        with self._lock:
            self._response_urls[token] = self.now() + RESPONSE_URL_TTL_S
        return f"{self.base_url}/aibot/response/{token}"

    # ------------------------------------------------------------------ assertion helpers

    @property
    def sent(self) -> list[WeComSent]:
        """Every message accepted so far, oldest first."""
        with self._lock:
            return list(self._sent)

    @property
    def cards(self) -> dict[str, FakeTemplateCard]:
        """Every template card sent, by task_id."""
        with self._lock:
            return dict(self._cards)

    @property
    def appchats(self) -> dict[str, dict[str, Any]]:
        """Every app group chat created, by chatid."""
        with self._lock:
            return {k: dict(v) for k, v in self._appchats.items()}

    def requests(self, path: str) -> int:
        """How many requests reached `path` (e.g. "/cgi-bin/gettoken"; "/aibot": connections)."""
        with self._lock:
            return self._requests[path]

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (to check that none is logged)."""
        with self._lock:
            return list(self._tokens)

    @staticmethod
    def wait_for(predicate: Callable[[], bool], *, what: str, timeout: float = 5.0) -> None:
        """Poll `predicate` until true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.01)

    # ------------------------------------------------------------------ app callback driver

    def _signed_query(self, crypt: WXBizMsgCrypt, encrypt: str) -> dict[str, str]:
        timestamp = str(int(self.now()))
        nonce = _digits(10)
        code, signature = sha1_signature(crypt.token, timestamp, nonce, encrypt)
        assert code == OK and signature is not None
        return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}

    def _verify_query(self, crypt: WXBizMsgCrypt, echo_plain: str | None) -> tuple[dict, str]:
        plain = echo_plain if echo_plain is not None else _digits(19)
        code, echostr = crypt.prp.encrypt(plain, crypt.receive_id)
        assert code == OK and echostr is not None
        query = self._signed_query(crypt, echostr)
        query["echostr"] = echostr
        return query, plain

    def app_verify_query(self, echo_plain: str | None = None) -> tuple[dict[str, str], str]:
        """URL verification (§5.1): (GET query with an encrypted echostr, expected plaintext)."""
        return self._verify_query(self._app_crypt, echo_plain)

    def app_callback_request(self, plaintext_xml: str) -> tuple[dict[str, str], bytes]:
        """Any decrypted callback XML, encrypted into the §5.2 envelope: (query, body)."""
        code, encrypt = self._app_crypt.prp.encrypt(plaintext_xml, self.corp_id)
        assert code == OK and encrypt is not None
        body = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypt)}</Encrypt>"
            f"<AgentID>{_cdata(str(self.agent_id))}</AgentID></xml>"
        )
        return self._signed_query(self._app_crypt, encrypt), body.encode("utf-8")

    def app_text_request(
        self,
        *,
        from_user: str,
        content: str,
        msg_id: str | None = None,
        create_time: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A member's text message to the app (§5.2), encrypted: (query, body)."""
        created = int(self.now()) if create_time is None else create_time
        plain = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(from_user)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType>{_cdata('text')}</MsgType>"
            f"<Content>{_cdata(content)}</Content>"
            f"<MsgId>{msg_id or _digits(19)}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )
        return self.app_callback_request(plain)

    def app_card_event_request(
        self,
        *,
        from_user: str,
        task_id: str,
        event_key: str,
        response_code: str,
        create_time: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The template_card_event click callback (§7.4), encrypted: (query, body)."""
        created = int(self.now()) if create_time is None else create_time
        plain = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(from_user)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType>{_cdata('event')}</MsgType>"
            f"<Event>{_cdata('template_card_event')}</Event>"
            f"<EventKey>{_cdata(event_key)}</EventKey><TaskId>{_cdata(task_id)}</TaskId>"
            f"<CardType>{_cdata('button_interaction')}</CardType>"
            f"<ResponseCode>{_cdata(response_code)}</ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID>"
            "<SelectedItems><SelectedItem><QuestionKey></QuestionKey>"
            "<OptionIds><OptionId></OptionId></OptionIds></SelectedItem></SelectedItems></xml>"
        )
        return self.app_callback_request(plain)

    def click_card(self, *, task_id: str, userid: str, key: str) -> tuple[dict[str, str], bytes]:
        """A member clicks button `key` of an app card: a new response_code, and the callback."""
        with self._lock:
            card = self._cards.get(task_id)
            if card is None or card.source != "app":
                raise KeyError(f"no app card with task_id {task_id!r}")
            keys = [b.get("key") for b in card.card.get("button_list") or [] if isinstance(b, dict)]
            if key not in keys:
                raise ValueError(f"card {task_id!r} has no button {key!r} (has {keys})")
            card.response_code = self._new_response_code(task_id)
            response_code = card.response_code
        return self.app_card_event_request(
            from_user=userid, task_id=task_id, event_key=key, response_code=response_code
        )

    def deliver_app_callback(
        self,
        url: str,
        query: dict[str, str],
        body: bytes = b"",
        *,
        timeout: float = CALLBACK_TIMEOUT_S,
        retries: int = CALLBACK_RETRIES,
    ) -> httpx.Response:
        """Call the app like WeCom does (GET when `body` is empty, else POST): `timeout` s each;
        on a timeout, connection failure or non-200, `retries` more tries with the same request.
        Returns the last response, or raises the last error."""
        self.last_delivery_attempts = 0
        headers: dict[str, str] = {}
        if body:
            json_body = body.lstrip()[:1] == b"{"
            headers["Content-Type"] = "application/json" if json_body else "text/xml"
        last_error: Exception | None = None
        response: httpx.Response | None = None
        with httpx.Client(timeout=timeout) as client:
            for _ in range(1 + retries):
                self.last_delivery_attempts += 1
                try:
                    if body:
                        response = client.post(url, params=query, content=body, headers=headers)
                    else:
                        response = client.get(url, params=query, headers=headers)
                    last_error = None
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    response, last_error = None, exc
                    continue
                if response.status_code == 200:
                    return response
        if last_error is not None:
            raise last_error
        assert response is not None
        return response

    deliver_aibot_callback = deliver_app_callback

    def decrypt_app_reply(self, xml_text: str) -> str:
        """Check and decrypt a passive encrypted XML reply (§5.3); ValueError if it is bad."""
        try:
            root = ElementTree.fromstring(xml_text)
            fields = {n: (root.findtext(n) or "") for n in ("MsgSignature", "TimeStamp", "Nonce")}
        except Exception as exc:
            raise ValueError(f"not a reply envelope: {exc}") from None
        code, plain = self._app_crypt.decrypt_msg(
            xml_text, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
        )
        if code != OK or plain is None:
            raise ValueError(f"reply does not decrypt: WXBizMsgCrypt error {code}")
        return plain

    # ------------------------------------------------------------------ AI bot, HTTP mode

    def _aibot_body(
        self,
        *,
        from_user: str,
        chat_id: str | None,
        msg_id: str | None,
        response_url: bool = True,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"msgid": msg_id or uuid.uuid4().hex, "aibotid": self.aibot_id}
        if chat_id:
            body["chatid"] = chat_id
        body["chattype"] = "group" if chat_id else "single"
        body["from"] = {"userid": from_user}
        body["create_time"] = int(self.now())
        if response_url:
            body["response_url"] = self.issue_response_url()
        return body

    def aibot_message_body(
        self,
        *,
        from_user: str,
        content: str,
        chat_id: str | None = None,
        msg_id: str | None = None,
    ) -> dict[str, Any]:
        """The decrypted §8.1 text message; in groups the bot only gets @-mentions of itself."""
        body = self._aibot_body(from_user=from_user, chat_id=chat_id, msg_id=msg_id)
        body["msgtype"] = "text"
        body["text"] = {"content": f"@{self.aibot_name} {content}" if chat_id else content}
        return body

    def aibot_event_body(
        self, *, from_user: str, eventtype: str, chat_id: str | None = None, **event_fields: Any
    ) -> dict[str, Any]:
        """A decrypted §8.1 event (enter_chat, template_card_event with event_key/task_id...)."""
        body = self._aibot_body(
            from_user=from_user, chat_id=chat_id, msg_id=None, response_url=False
        )
        body["msgtype"] = "event"
        body["event"] = {"eventtype": eventtype, **event_fields}
        return body

    def aibot_verify_query(self, echo_plain: str | None = None) -> tuple[dict[str, str], str]:
        """AI-bot URL verification (receiveid ""): (GET query, expected plaintext)."""
        return self._verify_query(self._aibot_crypt, echo_plain)

    def aibot_callback_request(self, body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """Any decrypted AI-bot callback, encrypted into `{"encrypt"}`: (query, body)."""
        plain = json.dumps(body, ensure_ascii=False)
        code, encrypt = self._aibot_crypt.prp.encrypt(plain, "")
        assert code == OK and encrypt is not None
        query = self._signed_query(self._aibot_crypt, encrypt)
        return query, json.dumps({"encrypt": encrypt}).encode("utf-8")

    def aibot_text_request(
        self,
        *,
        from_user: str,
        content: str,
        chat_id: str | None = None,
        msg_id: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """An encrypted AI-bot text callback (§8.1): (query, body)."""
        return self.aibot_callback_request(
            self.aibot_message_body(
                from_user=from_user, content=content, chat_id=chat_id, msg_id=msg_id
            )
        )

    def aibot_event_request(
        self, *, from_user: str, eventtype: str, chat_id: str | None = None, **event_fields: Any
    ) -> tuple[dict[str, str], bytes]:
        """An encrypted AI-bot event callback: (query, body)."""
        return self.aibot_callback_request(
            self.aibot_event_body(
                from_user=from_user, eventtype=eventtype, chat_id=chat_id, **event_fields
            )
        )

    def decrypt_aibot_reply(self, envelope: dict) -> dict:
        """Check and decrypt a passive encrypted JSON reply; ValueError if it is bad."""
        try:
            code, plain = self._aibot_crypt.decrypt_msg(
                json.dumps({"encrypt": envelope["encrypt"]}),
                str(envelope["msgsignature"]),
                str(envelope["timestamp"]),
                str(envelope["nonce"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a reply envelope: missing {exc}") from None
        if code != OK or plain is None:
            raise ValueError(f"reply does not decrypt: WXBizJsonMsgCrypt error {code}")
        return json.loads(plain)

    # ------------------------------------------------------------------ AI bot, WebSocket

    def live_connections(self) -> int:
        """Authenticated long connections for the bot (0 or 1: one live connection per bot)."""
        with self._lock:
            live = self._live
            return 1 if live is not None and not live.closed else 0

    def push_aibot_message(
        self,
        *,
        from_user: str,
        content: str,
        chat_id: str | None = None,
        msg_id: str | None = None,
    ) -> str:
        """Push an `aibot_msg_callback` text frame to the live connection; returns its req_id."""
        body = self.aibot_message_body(
            from_user=from_user, content=content, chat_id=chat_id, msg_id=msg_id
        )
        return self.push_aibot_frame("aibot_msg_callback", body)

    def push_aibot_event(
        self, *, from_user: str, eventtype: str, chat_id: str | None = None, **event_fields: Any
    ) -> str:
        """Push an `aibot_event_callback` frame to the live connection; returns its req_id."""
        body = self.aibot_event_body(
            from_user=from_user, eventtype=eventtype, chat_id=chat_id, **event_fields
        )
        return self.push_aibot_frame("aibot_event_callback", body)

    def click_aibot_card(
        self, *, task_id: str, userid: str, key: str, chat_id: str | None = None
    ) -> str:
        """A member clicks a button of a card the AI bot sent: a template_card_event frame."""
        with self._lock:
            card = self._cards.get(task_id)
        if card is None or card.source != "aibot":
            raise KeyError(f"no AI-bot card with task_id {task_id!r}")
        return self.push_aibot_event(
            from_user=userid,
            eventtype="template_card_event",
            chat_id=chat_id,
            event_key=key,
            task_id=task_id,
        )

    def push_aibot_frame(self, cmd: str, body: dict[str, Any]) -> str:
        """Push any frame `{cmd, headers:{req_id}, body}`; RuntimeError if nobody is live."""
        with self._lock:
            conn = self._live
        if conn is None or conn.closed:
            raise RuntimeError("no live AI-bot connection")
        req_id = _opaque(16)
        push = _Push(req_id=req_id, cmd=cmd, body=body, conn_id=conn.id, pushed_at=time.monotonic())
        with self._lock:
            self._pushes[req_id] = push
        frame = {"cmd": cmd, "headers": {"req_id": req_id}, "body": body}
        self._call(self._send(conn, frame))
        return req_id

    def wait_responded(self, req_id: str, timeout: float = 5.0) -> list[WeComSent]:
        """Wait until the app answered pushed frame `req_id` (a finished stream, or any other
        reply, welcome or card update); returns every reply sent on that req_id, oldest first."""
        with self._lock:
            push = self._pushes.get(req_id)
        if push is None:
            raise KeyError(f"no frame {req_id!r} was pushed")
        if not push.answered.wait(timeout):
            raise AssertionError(f"timed out waiting for a reply to {req_id}")
        with self._lock:
            return [s for s in self._sent if s.req_id == req_id and s.kind != "aibot_send"]

    def close_aibot_connections(self, *, code: int = 1001) -> int:
        """Drop every long connection (as a network failure or gateway restart would)."""
        with self._lock:
            count = sum(1 for c in self._conns.values() if not c.closed)
        self._call(self._close_all(code=code))
        return count

    # ------------------------------------------------------------------ plumbing

    def _build_app(self) -> Starlette:
        routes = [
            Route("/cgi-bin/gettoken", self._wrap(self._gettoken), methods=["GET"]),
            Route("/cgi-bin/message/send", self._wrap(self._message_send), methods=["POST"]),
            Route(
                "/cgi-bin/message/update_template_card",
                self._wrap(self._update_template_card),
                methods=["POST"],
            ),
            Route("/cgi-bin/appchat/create", self._wrap(self._appchat_create), methods=["POST"]),
            Route("/cgi-bin/appchat/send", self._wrap(self._appchat_send), methods=["POST"]),
            Route("/cgi-bin/webhook/send", self._wrap(self._webhook_send), methods=["POST"]),
            Route("/cgi-bin/auth/getuserinfo", self._wrap(self._auth_getuserinfo)),
            Route("/cgi-bin/user/getuserinfo", self._wrap(self._user_getuserinfo)),
            Route("/connect/oauth2/authorize", self._wrap(self._authorize), methods=["GET"]),
            Route("/aibot/response/{token}", self._wrap(self._response_url_send), methods=["POST"]),
            Route("/cgi-bin/aibot/response", self._wrap(self._response_url_send), methods=["POST"]),
            WebSocketRoute("/aibot", self._ws_aibot),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> Any:
        self._loop = asyncio.get_running_loop()
        watchdog = asyncio.create_task(self._heartbeat_watchdog())
        try:
            yield
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    def _wrap(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            with self._lock:
                self._requests[request.url.path] += 1
            return await handler(request)

        return endpoint

    def _errmsg(self, code: int, text: str) -> str:
        hint = f"{int(self.now())}_{secrets.randbelow(90) + 10}_{secrets.token_hex(16)}"
        return (
            f"{text}, hint: [{hint}], from ip: 127.0.0.1, "
            f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
        )

    def _err(self, code: int, text: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"errcode": code, "errmsg": self._errmsg(code, text), **extra})

    @staticmethod
    def _ok(**extra: Any) -> JSONResponse:
        return JSONResponse({"errcode": 0, "errmsg": "ok", **extra})

    def _record(self, sent: WeComSent) -> None:
        with self._lock:
            self._sent.append(sent)

    def _token_error(self, request: Request) -> JSONResponse | None:
        token = request.query_params.get("access_token", "")
        if not token:
            return self._err(41001, "access_token missing")
        with self._lock:
            expires_at = self._tokens.get(token)
        if expires_at is None:
            return self._err(40014, "invalid access_token")
        if expires_at <= self.now():
            return self._err(42001, "access_token expired")
        return None

    async def _json_request(self, request: Request) -> tuple[JSONResponse | None, dict]:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return self._err(47001, "data format error"), {}
        return None, body

    def _new_response_code(self, task_id: str) -> str:
        code = _opaque(48)
        with self._lock:
            self._response_codes[code] = (task_id, self.now() + RESPONSE_CODE_TTL_S)
        return code

    # ------------------------------------------------------------------ token (§7.1)

    async def _gettoken(self, request: Request) -> Response:
        corp_id = request.query_params.get("corpid", "")
        secret = request.query_params.get("corpsecret", "")
        if not corp_id:
            return self._err(41002, "corpid missing")
        if not secret:
            return self._err(41004, "corpsecret missing")
        if corp_id != self.corp_id:
            return self._err(40013, "invalid corpid")
        if not secrets.compare_digest(secret.encode(), self._secret.encode()):
            return self._err(40001, "invalid credential")
        now = self.now()
        with self._lock:
            # Within its validity a repeated request returns the same token, as WeCom does.
            for token, expires_at in self._tokens.items():
                if expires_at > now:
                    return self._ok(access_token=token, expires_in=int(expires_at - now))
            token = secrets.token_urlsafe(96)[:128]
            self._tokens[token] = now + TOKEN_TTL_S
        return self._ok(access_token=token, expires_in=TOKEN_TTL_S)

    # ------------------------------------------------------------------ messages (§7.2, §7.4)

    def _check_card(self, card: Any, *, allowed: frozenset[str]) -> str | None:
        """Validate a template_card; returns an error text (errcode 40058) or None."""
        if not isinstance(card, dict):
            return "template_card missing"
        card_type = card.get("card_type")
        if card_type not in allowed:
            return f"template_card.card_type {card_type!r} invalid"
        task_id = card.get("task_id")
        if card_type in INTERACTIVE_CARD_TYPES or task_id is not None:
            if not isinstance(task_id, str) or not task_id:
                return "template_card.task_id missing"
            if len(task_id.encode()) > TASK_ID_MAX_BYTES or not TASK_ID_RE.fullmatch(task_id):
                return "template_card.task_id invalid"
        if len(card.get("horizontal_content_list") or []) > 6:
            return "template_card.horizontal_content_list exceed max size 6"
        if len(card.get("jump_list") or []) > 3:
            return "template_card.jump_list exceed max size 3"
        menu = card.get("action_menu")
        if menu is not None and not (
            isinstance(menu, dict) and 1 <= len(menu.get("action_list") or []) <= 3
        ):
            return "template_card.action_menu.action_list size must be in [1, 3]"
        if card_type == "button_interaction":
            buttons = card.get("button_list")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
                return "template_card.button_list size must be in [1, 6]"
            keys: set[str] = set()
            for button in buttons:
                key = button.get("key") if isinstance(button, dict) else None
                if not isinstance(key, str) or not key:
                    return "template_card.button_list.key missing"
                if _utf8_len(key) > BUTTON_KEY_MAX_BYTES:
                    return "template_card.button_list.key exceed max length 1024"
                if key in keys:
                    return "template_card.button_list.key duplicated"
                keys.add(key)
                if not isinstance(button.get("text"), str) or not button["text"]:
                    return "template_card.button_list.text missing"
        elif card_type == "vote_interaction":
            checkbox = card.get("checkbox")
            options = checkbox.get("option_list") if isinstance(checkbox, dict) else None
            if not isinstance(options, list) or not 1 <= len(options) <= 20:
                return "template_card.checkbox.option_list size must be in [1, 20]"
            if not isinstance(card.get("submit_button"), dict):
                return "template_card.submit_button missing"
        elif card_type == "multiple_interaction":
            selects = card.get("select_list")
            if not isinstance(selects, list) or not 1 <= len(selects) <= 3:
                return "template_card.select_list size must be in [1, 3]"
            if not isinstance(card.get("submit_button"), dict):
                return "template_card.submit_button missing"
        return None

    def _check_content(self, body: dict, msgtype: str, limit: int) -> JSONResponse | None:
        section = body.get(msgtype)
        content = section.get("content") if isinstance(section, dict) else None
        if not isinstance(content, str) or not content:
            return self._err(44004, "empty content")
        if _utf8_len(content) > limit:
            return self._err(
                40058, f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
            )
        return None

    async def _message_send(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        error, body = await self._json_request(request)
        if error is not None:
            return error
        if str(body.get("agentid", "")) != str(self.agent_id):
            return self._err(40056, "invalid agentid")
        touser = str(body.get("touser") or "")
        with self._lock:
            known = set(self._users)
        wanted = [u for u in touser.split("|") if u]
        if "@all" in wanted:
            valid, invalid = sorted(known), []
        else:
            valid = [u for u in wanted if u in known]
            invalid = [u for u in wanted if u not in known]
        result = {
            "invaliduser": "|".join(invalid),
            "invalidparty": str(body.get("toparty") or ""),  # the fake knows no departments
            "invalidtag": str(body.get("totag") or ""),
            "unlicenseduser": "",
        }
        if not valid:
            return self._err(81013, "user & party & tag all invalid", **result)
        msgtype = body.get("msgtype")
        if msgtype not in APP_MSGTYPES:
            return self._err(40008, "invalid message type")
        if (
            msgtype in {"text", "markdown"}
            and (error := self._check_content(body, msgtype, APP_CONTENT_MAX_BYTES)) is not None
        ):
            return error
        response_code: str | None = None
        card = body.get("template_card")
        if msgtype == "template_card":
            if (text := self._check_card(card, allowed=CARD_TYPES)) is not None:
                return self._err(40058, f"{text}. invalid Request Parameter")
            task_id = card.get("task_id")
            with self._lock:
                if task_id is not None and task_id in self._cards:
                    # UNCONFIRMED: the real code for a reused task_id is not documented.
                    return self._err(40058, "duplicate task_id. invalid Request Parameter")
                if card["card_type"] in INTERACTIVE_CARD_TYPES:
                    response_code = self._new_response_code(task_id)
                if task_id is not None:
                    self._cards[task_id] = FakeTemplateCard(
                        task_id=task_id,
                        touser=touser,
                        card=card,
                        response_code=response_code or "",
                    )
        self._record(
            WeComSent(kind="app", target=touser, msgtype=msgtype, body=body, at=self.now())
        )
        extra = {"msgid": _opaque(30)}
        if response_code is not None:
            extra["response_code"] = response_code
        return self._ok(**result, **extra)

    async def _update_template_card(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        error, body = await self._json_request(request)
        if error is not None:
            return error
        if str(body.get("agentid", "")) != str(self.agent_id):
            return self._err(40056, "invalid agentid")
        button = body.get("button")
        new_card = body.get("template_card")
        if isinstance(button, dict):
            if not isinstance(button.get("replace_name"), str) or not button["replace_name"]:
                return self._err(40058, "button.replace_name missing. invalid Request Parameter")
        elif new_card is not None:
            if (text := self._check_card(new_card, allowed=CARD_TYPES)) is not None:
                return self._err(40058, f"{text}. invalid Request Parameter")
        else:
            return self._err(40058, "button or template_card missing. invalid Request Parameter")
        code = str(body.get("response_code") or "")
        with self._lock:
            entry = self._response_codes.pop(code, None)  # single use, even when expired
            if entry is None or entry[1] <= self.now():
                return self._err(60140, "invalid response_code")
            card = self._cards[entry[0]]
            if new_card is not None and new_card.get("task_id") not in (None, card.task_id):
                self._response_codes[code] = entry  # refused before use
                return self._err(40058, "template_card.task_id mismatch. invalid Request Parameter")
            if isinstance(button, dict):
                card.replaced_button = button["replace_name"]
            else:
                card.updated_card = new_card
            card.updates += 1
        self._record(
            WeComSent(
                kind="update_card",
                target=card.task_id,
                msgtype="button" if isinstance(button, dict) else "template_card",
                body=body,
                at=self.now(),
            )
        )
        return self._ok(invaliduser=[])

    # ------------------------------------------------------------------ appchat (§7.3)

    async def _appchat_create(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        error, body = await self._json_request(request)
        if error is not None:
            return error
        userlist = body.get("userlist")
        if not isinstance(userlist, list) or not 2 <= len(userlist) <= 500:
            return self._err(40058, "userlist size must be in [2, 500]. invalid Request Parameter")
        with self._lock:
            known = set(self._users)
        owner = body.get("owner") or userlist[0]
        if any(u not in known for u in [*userlist, owner]):
            return self._err(86216, "invalid chat member")
        name = body.get("name") or ""
        if not isinstance(name, str) or len(name) > 50:
            return self._err(40058, "name exceed max length 50. invalid Request Parameter")
        chatid = body.get("chatid") or uuid.uuid4().hex
        if not isinstance(chatid, str) or not CHATID_RE.fullmatch(chatid):
            return self._err(86001, "invalid chatid")
        with self._lock:
            if chatid in self._appchats:
                return self._err(86215, "chatid exist")
            self._appchats[chatid] = {"name": name, "owner": owner, "userlist": list(userlist)}
        return self._ok(chatid=chatid)

    async def _appchat_send(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        error, body = await self._json_request(request)
        if error is not None:
            return error
        chatid = str(body.get("chatid") or "")
        with self._lock:
            exists = chatid in self._appchats
        if not exists:
            return self._err(86003, "chatid not exist")
        msgtype = body.get("msgtype")
        if msgtype not in APPCHAT_MSGTYPES:  # template_card included: no cards in app groups
            return self._err(40008, "invalid message type")
        if (
            msgtype in {"text", "markdown"}
            and (error := self._check_content(body, msgtype, APP_CONTENT_MAX_BYTES)) is not None
        ):
            return error
        self._record(
            WeComSent(kind="appchat", target=chatid, msgtype=msgtype, body=body, at=self.now())
        )
        return self._ok()

    # ------------------------------------------------------------------ group robot (§6)

    def _check_image(self, image: Any) -> JSONResponse | None:
        if not isinstance(image, dict):
            return self._err(40058, "image missing. invalid Request Parameter")
        try:
            raw = base64.b64decode(str(image.get("base64") or ""), validate=True)
        except ValueError:
            raw = b""
        if not raw:
            return self._err(40058, "image.base64 invalid. invalid Request Parameter")
        if len(raw) > IMAGE_MAX_BYTES:
            return self._err(40009, "invalid image size")
        if not (raw.startswith(PNG_MAGIC) or raw.startswith(JPG_MAGIC)):
            return self._err(40005, "invalid file type")
        if str(image.get("md5") or "").lower() != hashlib.md5(raw).hexdigest():
            return self._err(301019, "media md5 not match")
        return None

    async def _webhook_send(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        now = self.now()
        with self._lock:
            window = self._webhooks.get(key)
            if window is None:
                return self._err(93000, "invalid webhook url")
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= WEBHOOK_RATE_PER_MIN:
                return self._err(45009, "api freq out of limit")
        error, body = await self._json_request(request)
        if error is not None:
            return error
        msgtype = body.get("msgtype")
        if msgtype not in WEBHOOK_MSGTYPES:
            return self._err(40008, "invalid message type")
        if msgtype == "text":
            error = self._check_content(body, "text", WEBHOOK_TEXT_MAX_BYTES)
        elif msgtype in {"markdown", "markdown_v2"}:
            error = self._check_content(body, msgtype, WEBHOOK_MARKDOWN_MAX_BYTES)
        elif msgtype == "image":
            error = self._check_image(body.get("image"))
        elif msgtype == "news":
            articles = (body.get("news") or {}).get("articles")
            if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
                error = self._err(40058, "news.articles size must be in [1, 8]")
        elif msgtype == "template_card":
            if text := self._check_card(body.get("template_card"), allowed=WEBHOOK_CARD_TYPES):
                error = self._err(40058, f"{text}. invalid Request Parameter")
        elif not ((body.get(msgtype) or {}).get("media_id")):
            error = self._err(40058, "media_id missing. invalid Request Parameter")
        if error is not None:
            return error
        with self._lock:
            window.append(now)
        self._record(WeComSent(kind="webhook", target=key, msgtype=msgtype, body=body, at=now))
        return self._ok()

    # ------------------------------------------------------------------ H5 login (§9)

    def _take_login_code(self, code: str) -> str | None:
        with self._lock:
            entry = self._login_codes.pop(code, None)  # single use, even when expired
        if entry is None or entry[1] <= self.now():
            return None
        return entry[0]

    async def _auth_getuserinfo(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        userid = self._take_login_code(request.query_params.get("code", ""))
        if userid is None:
            return self._err(40029, "invalid code")
        return self._ok(userid=userid)

    async def _user_getuserinfo(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        userid = self._take_login_code(request.query_params.get("code", ""))
        if userid is None:
            return self._err(40029, "invalid code")
        return self._ok(UserId=userid, DeviceId="")

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("appid") != self.corp_id:
            return _error_page(40013, "参数错误：appid 不是本企业的 CorpID")
        if query.get("response_type") != "code":
            return _error_page(40058, "参数错误：response_type 须为 code")
        scope = query.get("scope")
        if scope not in {"snsapi_base", "snsapi_privateinfo"}:
            return _error_page(40058, "参数错误：scope 须为 snsapi_base 或 snsapi_privateinfo")
        agent_id = query.get("agentid")
        if (agent_id is not None or scope == "snsapi_privateinfo") and agent_id != str(
            self.agent_id
        ):
            return _error_page(40056, "参数错误：agentid 不合法")
        state = query.get("state", "")
        if not STATE_RE.fullmatch(state):
            return _error_page(40058, "参数错误：state 只能是 a-zA-Z0-9，最长 128 字节")
        redirect_uri = query.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in {"http", "https"} or parts.hostname != self.trusted_domain:
            return _error_page(50001, "redirect_uri 需使用应用可信域名")
        with self._lock:
            userid = self._login_user
        if userid is None:
            return _error_page(50001, "请在企业微信客户端打开链接")
        code = self.issue_login_code(userid)
        params = [*parse_qsl(parts.query, keep_blank_values=True), ("code", code)]
        params.append(("state", state))
        location = urlunsplit(parts._replace(query=urlencode(params), fragment=""))
        return RedirectResponse(location, status_code=302)

    # ------------------------------------------------------------------ response_url (§8.1)

    async def _response_url_send(self, request: Request) -> Response:
        token = request.path_params.get("token") or request.query_params.get("response_code", "")
        now = self.now()
        with self._lock:
            expires_at = self._response_urls.get(token)
            if expires_at is None or expires_at <= now:
                self._response_urls.pop(token, None)
                return self._err(40058, "invalid response_code")
        error, body = await self._json_request(request)
        if error is not None:
            return error
        msgtype = body.get("msgtype")
        if msgtype in {"markdown", "text"}:
            error = self._check_content(body, msgtype, AIBOT_CONTENT_MAX_BYTES)
        elif msgtype == "template_card":
            # An interactive card sent this way is the AI bot's; clicks come as events.
            if text := self._register_aibot_card(body.get("template_card"), {}):
                error = self._err(40058, f"{text}. invalid Request Parameter")
        else:
            error = self._err(40008, "invalid message type")
        if error is not None:
            return error  # a refused body does not use the response_url up
        with self._lock:
            if self._response_urls.pop(token, None) is None:  # raced with another use
                return self._err(40058, "invalid response_code")
        self._record(
            WeComSent(kind="response_url", target=token, msgtype=msgtype, body=body, at=now)
        )
        return self._ok()

    # ------------------------------------------------------------------ the long connection (§8.2)

    async def _ws_aibot(self, ws: WebSocket) -> None:
        await ws.accept()
        conn = _Conn(id=uuid.uuid4().hex, ws=ws, last_ping=time.monotonic())
        with self._lock:
            self._conns[conn.id] = conn
            self._requests["/aibot"] += 1
            self.connections_opened += 1
        try:
            while not conn.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._on_frame(conn, raw)
        except Exception:  # a broken client must not take the fake down
            if not conn.closed:
                log.exception("fake wecom: AI-bot connection failed")
        finally:
            conn.closed = True
            with self._lock:
                self._conns.pop(conn.id, None)
                if self._live is conn:
                    self._live = None

    async def _ack(self, conn: _Conn, req_id: str, errcode: int = 0, errmsg: str = "ok") -> None:
        await self._send(
            conn, {"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg}
        )

    async def _on_frame(self, conn: _Conn, raw: str) -> None:
        try:
            frame = json.loads(raw)
            cmd = frame.get("cmd")
            req_id = str((frame.get("headers") or {}).get("req_id") or "")
            body = frame.get("body")
        except (ValueError, AttributeError):
            log.warning("fake wecom: unparsable AI-bot frame (%d chars)", len(raw))
            return
        if not conn.authenticated:
            await self._subscribe(conn, cmd, req_id, body)
            return
        if cmd == "ping":
            conn.last_ping = time.monotonic()
            await self._ack(conn, req_id)
        elif cmd == "aibot_subscribe":
            await self._ack(conn, req_id)  # already subscribed on this connection
        elif cmd in {"aibot_respond_msg", "aibot_respond_welcome_msg", "aibot_respond_update_msg"}:
            errcode, errmsg = self._on_respond(cmd, req_id, body)
            await self._ack(conn, req_id, errcode, errmsg)
        elif cmd == "aibot_send_msg":
            errcode, errmsg = self._on_send(req_id, body)
            await self._ack(conn, req_id, errcode, errmsg)
        else:
            await self._ack(conn, req_id, 40058, self._errmsg(40058, "invalid cmd"))

    async def _subscribe(self, conn: _Conn, cmd: Any, req_id: str, body: Any) -> None:
        with self._lock:
            self.subscribes += 1
        if cmd != "aibot_subscribe" or not isinstance(body, dict):
            await self._ack(conn, req_id, 40058, self._errmsg(40058, "aibot_subscribe first"))
            await self._close(conn, code=1008)
            return
        good = body.get("bot_id") == self.aibot_id and secrets.compare_digest(
            str(body.get("secret") or "").encode(), self._aibot_secret.encode()
        )
        if not good:
            await self._ack(conn, req_id, 40001, self._errmsg(40001, "invalid credential"))
            await self._close(conn, code=1008)
            return
        conn.authenticated = True
        conn.last_ping = time.monotonic()
        with self._lock:
            old, self._live = self._live, conn
        if old is not None and not old.closed:
            # One live connection per bot: the old one is told, then closed.
            event = {
                "msgid": uuid.uuid4().hex,
                "create_time": int(self.now()),
                "aibotid": self.aibot_id,
                "msgtype": "event",
                "event": {"eventtype": "disconnected_event"},
            }
            frame = {
                "cmd": "aibot_event_callback",
                "headers": {"req_id": _opaque(16)},
                "body": event,
            }
            await self._send(old, frame)
            self._spawn(self._close(old, code=1000))
        await self._ack(conn, req_id)

    def _on_respond(self, cmd: str, req_id: str, body: Any) -> tuple[int, str]:
        with self._lock:
            push = self._pushes.get(req_id)
        if push is None:
            return 846605, self._errmsg(846605, "invalid req_id")
        if not isinstance(body, dict):
            return 40058, self._errmsg(40058, "body missing. invalid Request Parameter")
        now = self.now()
        if cmd == "aibot_respond_update_msg":
            card = body.get("template_card")
            if body.get("response_type") != "update_template_card":
                return 40058, self._errmsg(40058, "response_type invalid")
            if (text := self._check_card(card, allowed=CARD_TYPES)) is not None:
                return 40058, self._errmsg(40058, f"{text}. invalid Request Parameter")
            task_id = card.get("task_id") or (push.body.get("event") or {}).get("task_id", "")
            with self._lock:
                known = self._cards.get(task_id)
                if known is not None:
                    known.updated_card = card
                    known.updates += 1
            sent = WeComSent(
                kind="update_card",
                target=str(task_id),
                msgtype="template_card",
                body=body,
                req_id=req_id,
                cmd=cmd,
                at=now,
            )
            finished = True
        else:
            msgtype = body.get("msgtype")
            if msgtype not in AIBOT_RESPOND_MSGTYPES:
                return 40008, self._errmsg(40008, "invalid message type")
            stream = body.get("stream") if isinstance(body.get("stream"), dict) else None
            if stream is not None and _utf8_len(stream.get("content")) > AIBOT_CONTENT_MAX_BYTES:
                return 40058, self._errmsg(
                    40058, "stream.content exceed max length 20480. invalid Request Parameter"
                )
            if msgtype in {"template_card", "stream_with_template_card"} and (
                body.get("template_card") is not None or msgtype == "template_card"
            ):
                error = self._register_aibot_card(body.get("template_card"), push.body)
                if error is not None:
                    return 40058, self._errmsg(40058, f"{error}. invalid Request Parameter")
            sent = WeComSent(
                kind="aibot_respond",
                target=req_id,
                msgtype=str(msgtype),
                body=body,
                req_id=req_id,
                cmd=cmd,
                at=now,
            )
            finished = stream is None or bool(stream.get("finish"))
        self._record(sent)
        if finished:
            push.answered.set()
        return 0, "ok"

    def _register_aibot_card(self, card: Any, context: dict) -> str | None:
        if (text := self._check_card(card, allowed=CARD_TYPES)) is not None:
            return text
        task_id = card.get("task_id")
        if task_id is None:
            return None
        with self._lock:
            if task_id in self._cards:
                return "duplicate task_id"
            self._cards[task_id] = FakeTemplateCard(
                task_id=task_id,
                touser=str(context.get("chatid") or (context.get("from") or {}).get("userid", "")),
                card=card,
                response_code="",
                source="aibot",
            )
        return None

    def _on_send(self, req_id: str, body: Any) -> tuple[int, str]:
        if not isinstance(body, dict) or not body.get("chatid"):
            return 40058, self._errmsg(40058, "chatid missing. invalid Request Parameter")
        msgtype = body.get("msgtype")
        if msgtype not in AIBOT_SEND_MSGTYPES:
            return 40008, self._errmsg(40008, "invalid message type")
        if msgtype == "markdown":
            content = (body.get("markdown") or {}).get("content")
            if not isinstance(content, str) or not content:
                return 44004, self._errmsg(44004, "empty content")
            if _utf8_len(content) > AIBOT_CONTENT_MAX_BYTES:
                return 40058, self._errmsg(
                    40058, "markdown.content exceed max length 20480. invalid Request Parameter"
                )
        elif msgtype == "template_card":
            error = self._register_aibot_card(body.get("template_card"), body)
            if error is not None:
                return 40058, self._errmsg(40058, f"{error}. invalid Request Parameter")
        elif not (body.get(msgtype) or {}).get("media_id"):
            return 40058, self._errmsg(40058, "media_id missing. invalid Request Parameter")
        chatid = str(body["chatid"])
        self._record(
            WeComSent(
                kind="aibot_send",
                target=chatid,
                msgtype=msgtype,
                body=body,
                req_id=req_id,
                cmd="aibot_send_msg",
                at=self.now(),
            )
        )
        return 0, "ok"

    async def _heartbeat_watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(0.5, self.ping_timeout_s / 4))
            deadline = time.monotonic() - self.ping_timeout_s
            with self._lock:
                stale = [c for c in self._conns.values() if not c.closed and c.last_ping < deadline]
            for conn in stale:
                await self._close(conn, code=1000)

    async def _send(self, conn: _Conn, frame: dict) -> None:
        try:
            async with conn.send_lock:
                await conn.ws.send_text(json.dumps(frame, ensure_ascii=False))
        except Exception:  # the client went away
            conn.closed = True

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close(self, conn: _Conn, *, code: int) -> None:
        if conn.closed:
            return
        conn.closed = True
        with self._lock:
            if self._live is conn:
                self._live = None
        with contextlib.suppress(Exception):
            await conn.ws.close(code=code)

    async def _close_all(self, *, code: int) -> None:
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            await self._close(conn, code=code)


def main(argv: list[str] | None = None) -> None:
    """Serve a fake WeCom until Ctrl-C: `python -m bot.fakes.wecom --port 8766`."""
    import argparse

    parser = argparse.ArgumentParser(description="Fake WeCom on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--corp-id", default="wwfakecorp")
    parser.add_argument("--agent-id", type=int, default=1000002)
    parser.add_argument("--secret", default="fake-secret")
    parser.add_argument("--token", default="faketoken")
    parser.add_argument("--encoding-aes-key", default="6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt")
    parser.add_argument("--aibot-id", default="aibfakebot")
    parser.add_argument("--aibot-secret", default="fake-aibot-secret")
    parser.add_argument("--aibot-token", default="fakeaibottoken")
    parser.add_argument(
        "--aibot-encoding-aes-key", default="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
    )
    parser.add_argument("--user", action="append", default=[], help="a corp member userid")
    args = parser.parse_args(argv)
    with FakeWeCom.running(
        port=args.port,
        corp_id=args.corp_id,
        agent_id=args.agent_id,
        secret=args.secret,
        token=args.token,
        encoding_aes_key=args.encoding_aes_key,
        aibot_id=args.aibot_id,
        aibot_secret=args.aibot_secret,
        aibot_token=args.aibot_token,
        aibot_encoding_aes_key=args.aibot_encoding_aes_key,
    ) as fake:
        for userid in args.user:
            fake.add_user(userid)
        print(f"fake WeCom listening on {fake.base_url} (AI bot: {fake.ws_url})", flush=True)
        wait_until_stopped()


if __name__ == "__main__":
    main()
