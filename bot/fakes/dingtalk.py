"""A faithful fake DingTalk (platforms.md §10 items 1–9) on 127.0.0.1, for tests and scripts.

Start it with `FakeDingTalk.running(client_id=..., client_secret=..., robot_code=...)`; point
`DINGTALK_API_BASE` and `DINGTALK_OAPI_BASE` (and the Stream client's base) at `.base_url`.
One server answers both the api.dingtalk.com and the oapi.dingtalk.com paths, and the Stream
gateway's WebSocket.

Errors follow the real split: oapi and webhooks answer HTTP 200 with a non-zero `errcode`;
the v1.0 APIs answer HTTP 4xx with `{"code", "message", "requestid"}`. Codes that are
observed in the wild (platforms.md §3.1) are used as observed; the others are our pick, because
no official source gives them (UNCONFIRMED):

| where | condition | answer |
|---|---|---|
| v1.0 any | missing, unknown or expired token | 401 `InvalidAuthentication` |
| `accessToken`, `connections/open` | wrong client id or secret | 400 `invalidClientIdOrSecret` |
| robot send | bad robotCode / group / msgKey / msgParam | 400 `invalidParameter.<field>.invalid` |
| robot send | robot is not a member of the group | 400 `robot.notInGroup` |
| robot send | msgParam over 15,000 bytes | 400 `invalidParameter.msgParam.tooLong` |
| card create | outTrackId already used | 400 `invalidParameter.outTrackId.duplicated` |
| card update | unknown outTrackId | 404 `card.notFound` |
| `gettoken` | wrong appkey or appsecret | errcode 40089 |
| topapi | unknown token / expired token | errcode 40014 / 42001 |
| `getuserinfo` | unknown, used or expired (5 min) auth code | errcode 40078 `不存在的临时授权码` |
| webhooks | unknown msgtype or a body that is not JSON | errcode 40035 |
| `sendBySession` | unknown session / expired session | errcode 300005 / 300001 |

Time: business time (token lifetimes, auth codes, session webhooks, custom-robot timestamps and
rate windows) follows `clock` plus `advance()`; Stream redelivery follows the real monotonic
clock, because tests wait for it in real time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.fakes.serving import ThreadedFake, wait_until_stopped

__all__ = [
    "BOT_TOPIC",
    "CARD_TOPIC",
    "FakeCard",
    "FakeDingTalk",
    "SentMessage",
    "bot_message_body",
    "signed_callback_headers",
]

log = logging.getLogger(__name__)

BOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
TOKEN_TTL_S = 7200
AUTH_CODE_TTL_S = 300
SESSION_TTL_S = 5400
TICKET_TTL_S = 300
MSG_PARAM_MAX_BYTES = 15_000
WEBHOOK_BODY_MAX_BYTES = 20_000
ROBOT_RATE_PER_MIN = 20
ROBOT_LOCKOUT_S = 600
TIMESTAMP_WINDOW_MS = 3_600_000

# Required msgParam fields per msgKey (platforms.md §3.2); None: accepted without checking.
MSG_KEYS: dict[str, tuple[str, ...] | None] = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleImageMsg": ("photoURL",),
    "sampleLink": ("text", "title", "messageUrl"),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    "sampleActionCard2": ("title", "text"),
    "sampleActionCard3": ("title", "text"),
    "sampleActionCard4": ("title", "text"),
    "sampleActionCard5": ("title", "text"),
    "sampleActionCard6": ("title", "text"),
    "sampleAudio": None,
    "sampleFile": None,
    "sampleVideo": None,
}
WEBHOOK_MSGTYPES = frozenset({"text", "markdown", "link", "actionCard", "feedCard"})


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class SentMessage:
    """One message the app sent: through the OpenAPI, a session webhook or a custom robot."""

    kind: str  # "group" | "single" | "session" | "custom"
    target: str | tuple[str, ...]  # conversation id, user ids, session id or robot token
    body: dict
    msg_key: str | None = None
    msg_param: dict | None = None  # the msgParam JSON string, decoded
    conversation_id: str | None = None
    at_ms: int = 0

    @property
    def text(self) -> str:
        """The human-readable text of the message, whatever its type (for assertions)."""
        source = self.msg_param if self.msg_param is not None else self.body
        return _message_text(source)


@dataclass
class FakeCard:
    """An interactive card instance as the fake holds it."""

    out_track_id: str
    template_id: str
    space_type: str  # "IM_GROUP" | "IM_ROBOT"
    space_id: str
    callback_type: str
    card_param_map: dict[str, str]
    private_data: dict[str, dict[str, str]] = field(default_factory=dict)
    at_user_ids: dict[str, str] = field(default_factory=dict)
    delivered: bool = True
    updates: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def _sign(timestamp: str, secret: str) -> str:
    # Deliberately independent of bot.dingtalk.signing so that the two implementations pin
    # each other in tests (platforms.md §10).
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def signed_callback_headers(secret: str, now_ms: int) -> dict[str, str]:
    """Headers DingTalk puts on an HTTP-mode robot callback (§1.1–1.2)."""
    timestamp = str(now_ms)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "timestamp": timestamp,
        "sign": _sign(timestamp, secret),
    }


def _opaque(prefix: str = "") -> str:
    return prefix + base64.b64encode(secrets.token_bytes(16)).decode()


def bot_message_body(
    *,
    text: str = "/帮助",
    robot_code: str = "dingfakerobot",
    session_webhook: str = "http://127.0.0.1:9/robot/sendBySession?session=none",
    session_webhook_expired_time: int | None = None,
    sender_staff_id: str = "user001",
    sender_nick: str = "张三",
    conversation_id: str | None = None,
    conversation_type: str = "2",
    conversation_title: str = "第一党支部",
    corp_id: str = "dingfakecorp",
    create_at: int | None = None,
    **overrides: Any,
) -> dict:
    """A realistic robot-message body (§1.3); `overrides` are raw camelCase fields set last."""
    now_ms = create_at if create_at is not None else int(time.time() * 1000)
    body: dict[str, Any] = {
        "msgtype": "text",
        # DingTalk strips the @-mention of the robot but leaves the space before the text.
        "text": {"content": f" {text}"},
        "msgId": _opaque("msg"),
        "createAt": now_ms,
        "conversationType": conversation_type,
        "conversationId": conversation_id or _opaque("cid"),
        "senderId": _opaque("$:LWCP_v1:$"),
        "senderStaffId": sender_staff_id,
        "senderNick": sender_nick,
        "senderCorpId": corp_id,
        "senderPlatform": "Win",
        "chatbotUserId": "$:LWCP_v1:$" + hashlib.sha256(robot_code.encode()).hexdigest()[:32],
        "chatbotCorpId": corp_id,
        "robotCode": robot_code,
        "sessionWebhook": session_webhook,
        "sessionWebhookExpiredTime": (
            session_webhook_expired_time
            if session_webhook_expired_time is not None
            else now_ms + SESSION_TTL_S * 1000
        ),
        "isAdmin": False,
        "isInAtList": True,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$robot"}],
    }
    if conversation_type == "2":
        body["conversationTitle"] = conversation_title
    body.update(overrides)
    return body


def _message_text(source: dict) -> str:
    """Concatenate the visible text fields of a webhook body or a msgParam."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in {"msgtype", "at", "picUrl", "picURL", "photoURL"}:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(source)
    return "\n".join(parts)


def _v1_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "requestid": uuid.uuid4().hex.upper()[:24]},
        status_code=status,
    )


def _errcode(code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message, **extra})


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


# --------------------------------------------------------------------------- internal state


@dataclass
class _CustomRobot:
    token: str
    secret: str | None
    keywords: tuple[str, ...]
    sends_ms: deque[int] = field(default_factory=deque)
    locked_until_ms: int = 0


@dataclass
class _Session:
    expires_at_ms: int
    conversation_id: str | None


@dataclass
class _Delivery:
    message_id: str
    type: str
    topic: str
    data: str
    deliveries: int = 0
    last_sent: float | None = None
    acked: threading.Event = field(default_factory=threading.Event)
    ack: dict | None = None
    ignored_acks: int = 0


@dataclass
class _Conn:
    id: str
    ws: WebSocket
    subscriptions: set[tuple[str, str]]
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


@dataclass
class _Fault:
    status: int
    body: Any
    remaining: int


# --------------------------------------------------------------------------- the fake


class FakeDingTalk(ThreadedFake):
    """Fake api.dingtalk.com + oapi.dingtalk.com + Stream gateway; inspect `.sent` and `.cards`."""

    label = "fake DingTalk"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        robot_code: str | None = None,
        corp_id: str = "dingfakecorp",
        clock: Callable[[], float] = time.time,
        redelivery_timeout_s: float = 60.0,
        max_deliveries: int = 5,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.robot_code = robot_code or client_id
        self.corp_id = corp_id
        self.redelivery_timeout_s = redelivery_timeout_s
        self.max_deliveries = max_deliveries
        self.base_url = ""
        self._clock = clock
        self._offset_s = 0.0
        self._lock = threading.RLock()
        self._conns: dict[str, _Conn] = {}
        self._reset_state()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._init_serving()
        self._background: set[asyncio.Task[None]] = set()
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def _reset_state(self) -> None:
        with self._lock:
            self._offset_s = 0.0
            self._requests: Counter[str] = Counter()
            self._faults: dict[str, list[_Fault]] = {}
            self._app_tokens: dict[str, int] = {}  # token -> expires_at_ms
            self._oapi_tokens: dict[str, int] = {}
            self._groups: dict[str, bool] = {}  # open conversation id -> robot is a member
            self._robots: dict[str, _CustomRobot] = {}
            self._sessions: dict[str, _Session] = {}
            self._auth_codes: dict[str, tuple[str, int]] = {}  # code -> (userid, expires_at_ms)
            self._sent: list[SentMessage] = []
            self._cards: dict[str, FakeCard] = {}
            self._tickets: dict[str, tuple[set[tuple[str, str]], int]] = {}
            self._deliveries: dict[str, _Delivery] = {}
            self._system_waiters: dict[str, _Delivery] = {}
            self._ignore_acks = 0
            self._latency_s = 0.0
            self.registrations = 0
            self.connections_opened = 0

    # ------------------------------------------------------------------ test set-up helpers

    def now_ms(self) -> int:
        """The fake's business time in ms (the clock plus everything `advance` added)."""
        return int((self._clock() + self._offset_s) * 1000)

    def advance(self, seconds: float) -> None:
        """Move the fake's business time forward (tokens, codes, sessions, rate windows)."""
        with self._lock:
            self._offset_s += seconds

    def add_group(self, cid: str, *, robot_member: bool = True) -> None:
        """Declare a group (open conversation id) and whether the app's robot is in it."""
        with self._lock:
            self._groups[cid] = robot_member

    def expire_tokens(self) -> None:
        """Expire every issued token: v1.0 calls answer 401, topapi calls errcode 42001."""
        with self._lock:
            past = self.now_ms() - 1
            self._app_tokens = dict.fromkeys(self._app_tokens, past)
            self._oapi_tokens = dict.fromkeys(self._oapi_tokens, past)

    def new_auth_code(self, userid: str) -> str:
        """An H5 requestAuthCode code for `userid`: single use, valid 5 minutes."""
        code = secrets.token_hex(16)
        with self._lock:
            self._auth_codes[code] = (userid, self.now_ms() + AUTH_CODE_TTL_S * 1000)
        return code

    def new_session_webhook(
        self, ttl_s: float = SESSION_TTL_S, *, conversation_id: str | None = None
    ) -> tuple[str, int]:
        """A sessionWebhook URL and its expiry (ms), as a robot callback would carry them."""
        session = secrets.token_urlsafe(24)
        expires_at_ms = self.now_ms() + int(ttl_s * 1000)
        with self._lock:
            self._sessions[session] = _Session(expires_at_ms, conversation_id)
        return f"{self.base_url}/robot/sendBySession?session={session}", expires_at_ms

    def add_custom_robot(
        self, token: str, secret: str | None = None, keywords: tuple[str, ...] = ()
    ) -> str:
        """Declare a custom group robot; returns its webhook URL (without timestamp/sign)."""
        with self._lock:
            self._robots[token] = _CustomRobot(token, secret, tuple(keywords))
        return f"{self.base_url}/robot/send?{urlencode({'access_token': token})}"

    def inject_fault(
        self, path: str, *, status: int = 500, body: Any = None, times: int = 1
    ) -> None:
        """Answer the next `times` requests to `path` with `status` and `body` instead."""
        payload = body if body is not None else {"code": "ServiceUnavailable", "message": "故障"}
        with self._lock:
            self._faults.setdefault(path, []).append(_Fault(status, payload, times))

    def set_latency(self, seconds: float) -> None:
        """Answer every HTTP request `seconds` late, as the real API does across the internet."""
        self._latency_s = seconds

    def ignore_acks(self, count: int = 1) -> None:
        """Drop the next `count` Stream acks as if lost, so those frames get redelivered."""
        with self._lock:
            self._ignore_acks += count

    def bot_message_body(
        self,
        *,
        text: str = "/帮助",
        conversation_id: str | None = None,
        session_ttl_s: float = SESSION_TTL_S,
        **fields: Any,
    ) -> dict:
        """A §1.3 robot-message body whose sessionWebhook points at this fake."""
        cid = conversation_id or _opaque("cid")
        url, expires_at_ms = self.new_session_webhook(session_ttl_s, conversation_id=cid)
        return bot_message_body(
            text=text,
            robot_code=self.robot_code,
            session_webhook=url,
            session_webhook_expired_time=expires_at_ms,
            conversation_id=cid,
            corp_id=self.corp_id,
            # The moment the session was minted: two clock reads could differ by a millisecond.
            create_at=expires_at_ms - int(session_ttl_s * 1000),
            **fields,
        )

    # ------------------------------------------------------------------ assertion helpers

    @property
    def sent(self) -> list[SentMessage]:
        """Every message accepted so far, oldest first."""
        with self._lock:
            return list(self._sent)

    @property
    def cards(self) -> dict[str, FakeCard]:
        """Every card created, by outTrackId."""
        with self._lock:
            return dict(self._cards)

    def issued_tokens(self) -> list[str]:
        """Every app and oapi access token issued so far (to check that none is logged)."""
        with self._lock:
            return [*self._app_tokens, *self._oapi_tokens]

    def request_count(self, path: str) -> int:
        """How many requests reached `path` (faulted ones included)."""
        with self._lock:
            return self._requests[path]

    @property
    def live_connections(self) -> int:
        """Stream connections currently open."""
        with self._lock:
            return sum(1 for conn in self._conns.values() if not conn.closed)

    def acked(self, message_id: str) -> bool:
        """Whether the app acked the Stream frame `message_id`."""
        with self._lock:
            delivery = self._deliveries.get(message_id)
        return delivery is not None and delivery.acked.is_set()

    def ack(self, message_id: str) -> dict | None:
        """The ack the app sent for `message_id`, if any."""
        with self._lock:
            delivery = self._deliveries.get(message_id)
            return None if delivery is None else delivery.ack

    def pushed(self, topic: str | None = None) -> list[str]:
        """The messageIds of the frames pushed so far (optionally of one topic), oldest first."""
        with self._lock:
            return [m for m, d in self._deliveries.items() if topic is None or d.topic == topic]

    def deliveries(self, message_id: str) -> int:
        """How many times the frame `message_id` was written to a connection."""
        with self._lock:
            delivery = self._deliveries.get(message_id)
            return 0 if delivery is None else delivery.deliveries

    def wait_acked(self, message_id: str, timeout: float = 5.0) -> dict:
        """Block until `message_id` is acked; returns the ack."""
        with self._lock:
            delivery = self._deliveries[message_id]
        if not delivery.acked.wait(timeout):
            raise TimeoutError(f"frame {message_id} was not acked within {timeout}s")
        assert delivery.ack is not None
        return delivery.ack

    @staticmethod
    def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        """Poll `predicate` until true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            time.sleep(0.01)

    # ------------------------------------------------------------------ Stream test hooks

    def push_bot_message(self, data: dict) -> str:
        """Push a robot-message CALLBACK frame; returns its headers.messageId."""
        return self.push_frame(topic=BOT_TOPIC, data=data)

    def push_frame(self, *, topic: str, data: dict, type: str = "CALLBACK") -> str:
        """Push any frame (`data` is sent as a JSON string); returns its messageId."""
        message_id = f"{uuid.uuid4().hex[:8]}_{uuid.uuid4().hex[:4]}_{uuid.uuid4().hex}"
        delivery = _Delivery(
            message_id=message_id,
            type=type,
            topic=topic,
            data=json.dumps(data, ensure_ascii=False),
        )
        with self._lock:
            self._deliveries[message_id] = delivery
        self._call(self._deliver(delivery))
        return message_id

    def click_card(
        self,
        out_track_id: str,
        user_id: str,
        action_id: str,
        params: dict | None = None,
        *,
        timeout: float = 5.0,
    ) -> dict | None:
        """Click a card button: push the card callback, wait for the ack, apply its update."""
        with self._lock:
            card = self._cards.get(out_track_id)
        if card is None:
            raise KeyError(f"no card {out_track_id!r}")
        if card.callback_type != "STREAM":
            raise ValueError(f"card {out_track_id!r} does not call back over Stream")
        content = {"cardPrivateData": {"actionIds": [action_id], "params": params or {}}}
        data = {
            "outTrackId": out_track_id,
            "corpId": self.corp_id,
            "userId": user_id,
            "userIdType": 1,
            "spaceType": card.space_type,
            "spaceId": card.space_id,
            "type": "actionCallback",
            "content": json.dumps(content, ensure_ascii=False),
            "extension": "{}",
        }
        message_id = self.push_frame(topic=CARD_TOPIC, data=data)
        ack = self.wait_acked(message_id, timeout)
        # The fake already applied the update when the ack arrived (see _on_ack).
        return _ack_response(ack)

    def ping(self, timeout: float = 5.0) -> dict:
        """Send a SYSTEM ping to the newest connection; returns its ack (data must echo)."""
        delivery = _Delivery(
            message_id=uuid.uuid4().hex,
            type="SYSTEM",
            topic="ping",
            data=json.dumps({"opaque": uuid.uuid4().hex}),
        )
        with self._lock:
            self._system_waiters[delivery.message_id] = delivery
        self._call(self._deliver(delivery))
        if not delivery.acked.wait(timeout):
            raise TimeoutError("ping was not answered")
        assert delivery.ack is not None
        return {"sent": delivery.data, **delivery.ack}

    def disconnect_all(self, *, graceful: bool = True, grace_s: float = 1.0) -> int:
        """SYSTEM disconnect to every connection (then close after `grace_s`), or drop them."""
        with self._lock:
            conns = [conn for conn in self._conns.values() if not conn.closed]
        for conn in conns:
            if graceful:
                frame = self._frame(
                    type="SYSTEM",
                    topic="disconnect",
                    message_id=uuid.uuid4().hex,
                    data=json.dumps({"reason": "gateway maintenance"}),
                    conn=conn,
                )
                self._call(self._disconnect_later(conn, frame, grace_s))
            else:
                self._call(self._close(conn, code=1011))
        return len(conns)

    # ------------------------------------------------------------------ plumbing

    def _build_app(self) -> Starlette:
        routes = [
            Route("/v1.0/oauth2/accessToken", self._wrap(self._access_token), methods=["POST"]),
            Route("/gettoken", self._wrap(self._gettoken), methods=["GET"]),
            Route("/v1.0/robot/groupMessages/send", self._wrap(self._group_send), methods=["POST"]),
            Route(
                "/v1.0/robot/oToMessages/batchSend", self._wrap(self._single_send), methods=["POST"]
            ),
            Route("/robot/send", self._wrap(self._custom_robot), methods=["POST"]),
            Route("/robot/sendBySession", self._wrap(self._session_send), methods=["POST"]),
            Route("/topapi/v2/user/getuserinfo", self._wrap(self._getuserinfo), methods=["POST"]),
            Route(
                "/v1.0/card/instances/createAndDeliver",
                self._wrap(self._card_create),
                methods=["POST"],
            ),
            Route("/v1.0/card/instances", self._wrap(self._card_update), methods=["PUT"]),
            Route(
                "/v1.0/gateway/connections/open",
                self._wrap(self._open_connection),
                methods=["POST"],
            ),
            WebSocketRoute("/connect", self._ws_connect),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> Any:
        self._loop = asyncio.get_running_loop()
        redeliverer = asyncio.create_task(self._redeliver_forever())
        try:
            yield
        finally:
            redeliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await redeliverer

    def _wrap(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            path = request.url.path
            with self._lock:
                self._requests[path] += 1
                faults = self._faults.get(path)
                fault = faults[0] if faults else None
                if fault is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.pop(0)  # type: ignore[union-attr]
            if self._latency_s:
                await asyncio.sleep(self._latency_s)
            if fault is not None:
                return JSONResponse(fault.body, status_code=fault.status)
            return await handler(request)

        return endpoint

    def _app_token_error(self, request: Request) -> JSONResponse | None:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        with self._lock:
            expires_at = self._app_tokens.get(token)
        if not token or expires_at is None or expires_at <= self.now_ms():
            return _v1_error(401, "InvalidAuthentication", "不合法的access_token")
        return None

    # ------------------------------------------------------------------ tokens (§3.3)

    async def _access_token(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or (body.get("appKey"), body.get("appSecret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _v1_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        now = self.now_ms()
        with self._lock:
            # A repeated request within validity returns the same token, as DingTalk does.
            for token, expires_at in self._app_tokens.items():
                if expires_at > now:
                    return JSONResponse(
                        {"accessToken": token, "expireIn": (expires_at - now) // 1000}
                    )
            token = secrets.token_hex(16)
            self._app_tokens[token] = now + TOKEN_TTL_S * 1000
        return JSONResponse({"accessToken": token, "expireIn": TOKEN_TTL_S})

    async def _gettoken(self, request: Request) -> Response:
        query = request.query_params
        if (query.get("appkey"), query.get("appsecret")) != (self.client_id, self.client_secret):
            return _errcode(40089, "不合法的corpid或corpsecret")
        now = self.now_ms()
        with self._lock:
            for token, expires_at in self._oapi_tokens.items():
                if expires_at > now:
                    return _errcode(
                        0, "ok", access_token=token, expires_in=(expires_at - now) // 1000
                    )
            token = secrets.token_hex(16)
            self._oapi_tokens[token] = now + TOKEN_TTL_S * 1000
        return _errcode(0, "ok", access_token=token, expires_in=TOKEN_TTL_S)

    # ------------------------------------------------------------------ robot messages (§3.2)

    def _check_robot_message(self, body: Any) -> tuple[JSONResponse | None, dict | None]:
        if not isinstance(body, dict):
            return _v1_error(400, "InvalidParameter", "请求体不是 JSON 对象"), None
        if not body.get("robotCode"):
            return _v1_error(400, "invalidParameter.robotCode.empty", "robotCode 为空"), None
        if body["robotCode"] != self.robot_code:
            return _v1_error(400, "invalidParameter.robotCode.invalid", "robotCode 不存在"), None
        msg_key = body.get("msgKey")
        if msg_key not in MSG_KEYS:
            return _v1_error(400, "invalidParameter.msgKey.invalid", "msgKey 不合法"), None
        raw = body.get("msgParam")
        if not isinstance(raw, str):
            return _v1_error(400, "invalidParameter.msgParam.invalid", "msgParam 须为字符串"), None
        if len(raw.encode("utf-8")) > MSG_PARAM_MAX_BYTES:
            return _v1_error(400, "invalidParameter.msgParam.tooLong", "msgParam 超长"), None
        try:
            param = json.loads(raw)
        except ValueError:
            param = None
        required = MSG_KEYS[msg_key]
        if not isinstance(param, dict) or any(
            not isinstance(param.get(name), str) for name in required or ()
        ):
            return _v1_error(400, "invalidParameter.msgParam.invalid", "msgParam 字段不全"), None
        return None, param

    async def _group_send(self, request: Request) -> Response:
        if (error := self._app_token_error(request)) is not None:
            return error
        body = await _json_body(request)
        error, param = self._check_robot_message(body)
        if error is not None:
            return error
        cid = body.get("openConversationId")
        with self._lock:
            member = self._groups.get(cid) if isinstance(cid, str) else None
        if member is None:
            return _v1_error(
                400, "invalidParameter.openConversationId.invalid", "openConversationId 不存在"
            )
        if not member:
            return _v1_error(400, "robot.notInGroup", "机器人不在群内")
        self._record(
            SentMessage(
                kind="group",
                target=cid,
                body=body,
                msg_key=body["msgKey"],
                msg_param=param,
                conversation_id=cid,
                at_ms=self.now_ms(),
            )
        )
        return JSONResponse({"processQueryKey": _opaque()})

    async def _single_send(self, request: Request) -> Response:
        if (error := self._app_token_error(request)) is not None:
            return error
        body = await _json_body(request)
        error, param = self._check_robot_message(body)
        if error is not None:
            return error
        user_ids = body.get("userIds")
        if (
            not isinstance(user_ids, list)
            or not 1 <= len(user_ids) <= 20
            or not all(isinstance(u, str) and u for u in user_ids)
        ):
            return _v1_error(400, "invalidParameter.userIds.invalid", "userIds 须为 1–20 个用户")
        self._record(
            SentMessage(
                kind="single",
                target=tuple(user_ids),
                body=body,
                msg_key=body["msgKey"],
                msg_param=param,
                at_ms=self.now_ms(),
            )
        )
        return JSONResponse(
            {
                "processQueryKey": _opaque(),
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": [],
            }
        )

    # ------------------------------------------------------------------ webhooks (§1.4, §3.1)

    @staticmethod
    async def _webhook_body(request: Request) -> tuple[JSONResponse | None, dict]:
        raw = await request.body()
        if len(raw) > WEBHOOK_BODY_MAX_BYTES:
            return _errcode(460101, "message too long, exceed 20000 bytes"), {}
        try:
            body = json.loads(raw)
        except ValueError:
            return _errcode(40035, "缺少参数 json"), {}
        if not isinstance(body, dict) or body.get("msgtype") not in WEBHOOK_MSGTYPES:
            return _errcode(40035, "不合法的消息类型 msgtype"), {}
        if not isinstance(body.get(body["msgtype"]), dict):
            return _errcode(40035, "缺少消息内容"), {}
        return None, body

    async def _custom_robot(self, request: Request) -> Response:
        query = request.query_params
        with self._lock:
            robot = self._robots.get(query.get("access_token", ""))
        if robot is None:
            return _errcode(300005, "token is not exist")
        now = self.now_ms()
        if robot.secret is not None:
            timestamp = query.get("timestamp", "")
            if not timestamp.isdigit() or abs(now - int(timestamp)) > TIMESTAMP_WINDOW_MS:
                return _errcode(310000, "invalid timestamp")
            if not hmac.compare_digest(query.get("sign", ""), _sign(timestamp, robot.secret)):
                return _errcode(310000, "sign not match")
        with self._lock:
            # 20 per minute, sliding; going over locks the robot for 10 minutes.
            if now < robot.locked_until_ms:
                return _errcode(130101, "send too fast, exceed 20 times per minute")
            while robot.sends_ms and robot.sends_ms[0] <= now - 60_000:
                robot.sends_ms.popleft()
            if len(robot.sends_ms) >= ROBOT_RATE_PER_MIN:
                robot.locked_until_ms = now + ROBOT_LOCKOUT_S * 1000
                return _errcode(130101, "send too fast, exceed 20 times per minute")
            robot.sends_ms.append(now)
        error, body = await self._webhook_body(request)
        if error is not None:
            return error
        if robot.keywords and not any(k in _message_text(body) for k in robot.keywords):
            return _errcode(310000, "keywords not in content")
        self._record(SentMessage(kind="custom", target=robot.token, body=body, at_ms=now))
        return _errcode(0, "ok")

    async def _session_send(self, request: Request) -> Response:
        session_id = request.query_params.get("session", "")
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            return _errcode(300005, "token is not exist")
        now = self.now_ms()
        if now >= session.expires_at_ms:
            return _errcode(300001, "session webhook expired")
        error, body = await self._webhook_body(request)
        if error is not None:
            return error
        self._record(
            SentMessage(
                kind="session",
                target=session_id,
                body=body,
                conversation_id=session.conversation_id,
                at_ms=now,
            )
        )
        return _errcode(0, "ok")

    # ------------------------------------------------------------------ H5 login (§4)

    async def _getuserinfo(self, request: Request) -> Response:
        token = request.query_params.get("access_token", "")
        now = self.now_ms()
        with self._lock:
            expires_at = self._oapi_tokens.get(token)
        if expires_at is None:
            return _errcode(40014, "不合法的access_token")
        if expires_at <= now:
            return _errcode(42001, "access_token超时")
        code = ""
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await _json_body(request)
            code = str(body.get("code", "")) if isinstance(body, dict) else ""
        else:
            # Parsed by hand: Starlette's form parser needs python-multipart, which we lack.
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            code = (form.get("code") or [""])[0]
        with self._lock:
            entry = self._auth_codes.pop(code, None)  # single use, even when expired
        if entry is None or entry[1] <= now:
            return _errcode(40078, "不存在的临时授权码")
        userid = entry[0]
        result = {
            "userid": userid,
            "unionid": hashlib.sha256(userid.encode()).hexdigest()[:28],
            "associated_unionid": "",
            "name": userid,
            "device_id": uuid.uuid4().hex,
            "sys": False,
            "sys_level": 0,
        }
        return _errcode(0, "ok", request_id=uuid.uuid4().hex, result=result)

    # ------------------------------------------------------------------ cards (§3.4)

    async def _card_create(self, request: Request) -> Response:
        if (error := self._app_token_error(request)) is not None:
            return error
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _v1_error(400, "InvalidParameter", "请求体不是 JSON 对象")
        out_track_id = body.get("outTrackId")
        template_id = body.get("cardTemplateId")
        if not out_track_id or not template_id:
            return _v1_error(400, "invalidParameter.outTrackId.invalid", "缺少必填参数")
        param_map = (body.get("cardData") or {}).get("cardParamMap")
        if not _is_param_map(param_map):
            return _v1_error(
                400, "invalidParameter.cardParamMap.invalid", "cardParamMap 须为字符串"
            )
        callback_type = body.get("callbackType", "STREAM")
        if callback_type not in {"STREAM", "HTTP"} or (
            callback_type == "HTTP" and not body.get("callbackRouteKey")
        ):
            return _v1_error(400, "invalidParameter.callbackType.invalid", "回调类型不合法")
        space = str(body.get("openSpaceId", ""))
        space_type, _, space_id = space.removeprefix("dtv1.card//").partition(".")
        if not space.startswith("dtv1.card//") or space_type not in {"IM_GROUP", "IM_ROBOT"}:
            return _v1_error(400, "invalidParameter.openSpaceId.invalid", "openSpaceId 不合法")
        if not space_id:
            return _v1_error(400, "invalidParameter.openSpaceId.invalid", "openSpaceId 不合法")
        delivered, error_msg = True, ""
        at_user_ids: dict[str, str] = {}
        if space_type == "IM_GROUP":
            deliver = body.get("imGroupOpenDeliverModel") or {}
            at_user_ids = dict(deliver.get("atUserIds") or {})
            with self._lock:
                member = self._groups.get(space_id)
            if deliver.get("robotCode") != self.robot_code:
                delivered, error_msg = False, "robotCode 不合法"
            elif not member:
                delivered, error_msg = False, "机器人不在群内"
        else:
            deliver = body.get("imRobotOpenDeliverModel") or {}
            if deliver.get("spaceType") != "IM_ROBOT":
                delivered, error_msg = False, "imRobotOpenDeliverModel.spaceType 须为 IM_ROBOT"
        with self._lock:
            if out_track_id in self._cards:
                return _v1_error(400, "invalidParameter.outTrackId.duplicated", "outTrackId 已存在")
            self._cards[out_track_id] = FakeCard(
                out_track_id=out_track_id,
                template_id=template_id,
                space_type=space_type,
                space_id=space_id,
                callback_type=callback_type,
                card_param_map=dict(param_map),
                at_user_ids=at_user_ids,
                delivered=delivered,
            )
        result_item: dict[str, Any] = {
            "spaceType": space_type,
            "spaceId": space_id,
            "success": delivered,
            "carrierId": _opaque() if delivered else "",
        }
        if not delivered:
            result_item["errorMsg"] = error_msg
        return JSONResponse(
            {
                "success": True,
                "result": {"outTrackId": out_track_id, "deliverResults": [result_item]},
            }
        )

    async def _card_update(self, request: Request) -> Response:
        if (error := self._app_token_error(request)) is not None:
            return error
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _v1_error(400, "InvalidParameter", "请求体不是 JSON 对象")
        with self._lock:
            card = self._cards.get(body.get("outTrackId", ""))
        if card is None:
            return _v1_error(404, "card.notFound", "卡片实例不存在")
        if not self._apply_card_update(card, body):
            return _v1_error(
                400, "invalidParameter.cardParamMap.invalid", "cardParamMap 须为字符串"
            )
        return JSONResponse({"success": True, "result": True})

    def _apply_card_update(self, card: FakeCard, update: dict) -> bool:
        """Apply a card update (PUT body or an ack's response); False if it is malformed."""
        options = update.get("cardUpdateOptions") or {}
        public = (update.get("cardData") or {}).get("cardParamMap")
        private = update.get("privateData") or {}
        if public is not None and not _is_param_map(public):
            return False
        if not isinstance(private, dict) or not all(
            _is_param_map((v or {}).get("cardParamMap", {})) for v in private.values()
        ):
            return False
        with self._lock:
            if public is not None:
                if options.get("updateCardDataByKey"):
                    card.card_param_map.update(public)
                else:
                    card.card_param_map = dict(public)
            for user_id, data in private.items():
                params = dict((data or {}).get("cardParamMap", {}))
                if options.get("updatePrivateDataByKey"):
                    card.private_data.setdefault(user_id, {}).update(params)
                else:
                    card.private_data[user_id] = params
            card.updates.append(update)
        return True

    # ------------------------------------------------------------------ Stream gateway (§2)

    async def _open_connection(self, request: Request) -> Response:
        body = await _json_body(request)
        with self._lock:
            self.registrations += 1
        if not isinstance(body, dict) or (body.get("clientId"), body.get("clientSecret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _v1_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        subscriptions = body.get("subscriptions")
        if not isinstance(subscriptions, list) or not subscriptions:
            return _v1_error(400, "invalidParameter.subscriptions.empty", "subscriptions 为空")
        subs: set[tuple[str, str]] = set()
        for item in subscriptions:
            if not isinstance(item, dict) or item.get("type") not in {
                "EVENT",
                "CALLBACK",
                "SYSTEM",
            }:
                return _v1_error(400, "invalidParameter.subscriptions.invalid", "订阅不合法")
            subs.add((item["type"], str(item.get("topic", ""))))
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._tickets[ticket] = (subs, self.now_ms() + TICKET_TTL_S * 1000)
        endpoint = self.base_url.replace("http://", "ws://") + "/connect"
        return JSONResponse({"endpoint": endpoint, "ticket": ticket})

    async def _ws_connect(self, ws: WebSocket) -> None:
        ticket = ws.query_params.get("ticket", "")
        with self._lock:
            entry = self._tickets.pop(ticket, None)  # a ticket opens one connection
        if entry is None or entry[1] <= self.now_ms():
            await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        await ws.accept()
        conn = _Conn(id=uuid.uuid4().hex, ws=ws, subscriptions=entry[0])
        with self._lock:
            self._conns[conn.id] = conn
            self.connections_opened += 1
        try:
            while True:
                raw = await ws.receive_text()
                self._on_client_message(raw)
        except WebSocketDisconnect:
            pass
        except Exception:  # a broken client must not take the fake down
            log.exception("fake dingtalk: stream connection failed")
        finally:
            conn.closed = True
            with self._lock:
                self._conns.pop(conn.id, None)

    def _on_client_message(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
            message_id = ack["headers"]["messageId"]
        except (ValueError, KeyError, TypeError):
            log.warning("fake dingtalk: unparsable client frame %r", raw[:200])
            return
        with self._lock:
            delivery = self._deliveries.get(message_id) or self._system_waiters.pop(
                message_id, None
            )
            if delivery is None or delivery.acked.is_set():
                return
            if delivery.type != "SYSTEM" and self._ignore_acks > 0:
                self._ignore_acks -= 1
                delivery.ignored_acks += 1
                return
            delivery.ack = ack
        if delivery.topic == CARD_TOPIC and ack.get("code") == 200:
            response = _ack_response(ack)
            card_id = json.loads(delivery.data).get("outTrackId", "")
            with self._lock:
                card = self._cards.get(card_id)
            if card is not None and isinstance(response, dict):
                self._apply_card_update(card, response)
        delivery.acked.set()

    def _frame(self, *, type: str, topic: str, message_id: str, data: str, conn: _Conn) -> dict:
        headers = {
            "appId": self.robot_code,
            "connectionId": conn.id,
            "contentType": "application/json",
            "messageId": message_id,
            "topic": topic,
            "time": str(self.now_ms()),
        }
        return {"specVersion": "1.0", "type": type, "headers": headers, "data": data}

    def _pick_connection(self, delivery: _Delivery) -> _Conn | None:
        with self._lock:
            live = [c for c in self._conns.values() if not c.closed]
        if delivery.type != "SYSTEM":
            wanted = {(delivery.type, delivery.topic), (delivery.type, "*")}
            live = [c for c in live if c.subscriptions & wanted]
        return live[-1] if live else None

    async def _deliver(self, delivery: _Delivery) -> None:
        conn = self._pick_connection(delivery)
        if conn is None:
            return  # kept pending; the redelivery loop sends it once someone connects
        frame = self._frame(
            type=delivery.type,
            topic=delivery.topic,
            message_id=delivery.message_id,
            data=delivery.data,
            conn=conn,
        )
        with self._lock:
            delivery.deliveries += 1
            delivery.last_sent = time.monotonic()
        await self._send(conn, frame)

    async def _send(self, conn: _Conn, frame: dict) -> None:
        try:
            async with conn.send_lock:
                await conn.ws.send_text(json.dumps(frame, ensure_ascii=False))
        except Exception:  # the client went away; redelivery covers the frame
            conn.closed = True

    async def _redeliver_forever(self) -> None:
        while True:
            await asyncio.sleep(min(0.05, self.redelivery_timeout_s / 5))
            now = time.monotonic()
            with self._lock:
                due = [
                    d
                    for d in self._deliveries.values()
                    if not d.acked.is_set()
                    and d.deliveries < self.max_deliveries
                    and (d.last_sent is None or now - d.last_sent >= self.redelivery_timeout_s)
                ]
            for delivery in due:
                await self._deliver(delivery)

    async def _disconnect_later(self, conn: _Conn, frame: dict, grace_s: float) -> None:
        await self._send(conn, frame)

        async def close_after() -> None:
            await asyncio.sleep(grace_s)
            await self._close(conn, code=1001)

        task = asyncio.create_task(close_after())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close(self, conn: _Conn, *, code: int) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(Exception):
            await conn.ws.close(code=code)

    async def _close_all(self, *, code: int) -> None:
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            await self._close(conn, code=code)

    def _record(self, message: SentMessage) -> None:
        with self._lock:
            self._sent.append(message)


def _is_param_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _ack_response(ack: dict) -> Any:
    """The `response` an ack carries in its JSON-string `data` (None when absent)."""
    try:
        data = json.loads(ack.get("data") or "null")
    except (TypeError, ValueError):
        return None
    return data.get("response") if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> None:
    """Serve a fake DingTalk until Ctrl-C: `python -m bot.fakes.dingtalk --port 8765`."""
    import argparse

    parser = argparse.ArgumentParser(description="Fake DingTalk on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--client-id", default="dingfakeclient")
    parser.add_argument("--client-secret", default="fake-secret")
    parser.add_argument("--robot-code", default=None)
    parser.add_argument("--group", action="append", default=[], help="a group the robot is in")
    parser.add_argument("--redelivery-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    with FakeDingTalk.running(
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        robot_code=args.robot_code,
        redelivery_timeout_s=args.redelivery_timeout,
    ) as fake:
        for cid in args.group:
            fake.add_group(cid)
        print(f"fake DingTalk listening on {fake.base_url}", flush=True)
        wait_until_stopped()


if __name__ == "__main__":
    main()
