"""WeCom server API client: app token, 1:1 messages, template cards, group robots, H5 login.

Synchronous httpx, shared by threads, like the DingTalk client. Business errors come back as
HTTP 200 with a non-zero `errcode` (platforms.md §10); every call turns them into WeComError.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from bot.token_cache import TokenCache

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)

# "This access_token is bad, stale or expired": fetch a fresh one and retry once (§7.1).
STALE_TOKEN_CODES = frozenset({40001, 40014, 42001})
# update_template_card with a response_code already used or expired: the card was updated.
CARD_ALREADY_UPDATED = 60140
TEXT_MAX_BYTES = 2048
# Group robots and response_url take 4096 bytes of markdown; app messages 2048 (§6, §7.2).
MARKDOWN_MAX_BYTES = 4096
APP_MARKDOWN_MAX_BYTES = 2048
IMAGE_MAX_BYTES = 2 * 1024 * 1024
CONTINUED = "\n（续）"
TRUNCATED = "\n……（内容过长，已截断）"


class WeComError(Exception):
    """A WeCom call that failed: `code` is the errcode (as text), or "network"."""

    def __init__(self, *, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"WeCom error {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


class WeComClient:
    """The self-built app's client (qyapi.weixin.qq.com), plus group-robot webhooks."""

    def __init__(self, *, http: httpx.Client, api_base: str, corp_id: str, secret: str,
                 agent_id: str, clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self._token = TokenCache(self._fetch_token, clock)

    def __repr__(self) -> str:
        return f"WeComClient(api_base={self._api_base!r}, corp_id={self._corp_id!r})"

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client) -> WeComClient:
        """A client for the WECOM_* app settings."""
        return cls(http=http, api_base=settings.wecom_api_base, corp_id=settings.wecom_corp_id,
                   secret=settings.wecom_secret.get_secret_value(),
                   agent_id=settings.wecom_agent_id)

    # ------------------------------------------------------------------ transport

    def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise WeComError(code="network", message=f"{type(exc).__name__} on {_safe(url)}") \
                from None
        if response.status_code != 200:
            raise WeComError(code=f"http{response.status_code}",
                             message=f"HTTP {response.status_code} from {_safe(url)}",
                             status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise WeComError(code="-1", message=f"not JSON from {_safe(url)}") from None
        return body if isinstance(body, dict) else {}

    def _fetch_token(self) -> tuple[str, int]:
        body = self._request("GET", f"{self._api_base}/cgi-bin/gettoken",
                             params={"corpid": self._corp_id, "corpsecret": self._secret})
        if body.get("errcode", 0) != 0 or not body.get("access_token"):
            raise WeComError(code=str(body.get("errcode")), message=str(body.get("errmsg")))
        return str(body["access_token"]), int(body.get("expires_in") or 7200)

    def _api(self, method: str, path: str, *, json: dict[str, Any] | None = None,
             params: dict[str, str] | None = None) -> dict[str, Any]:
        """Call a token-protected API; a stale token is refetched and the call retried once."""
        for attempt in (1, 2):
            token = self._token.get()
            body = self._request(method, f"{self._api_base}{path}",
                                 params={**(params or {}), "access_token": token}, json=json)
            code = int(body.get("errcode") or 0)
            if code == 0:
                return body
            if code in STALE_TOKEN_CODES and attempt == 1:
                self._token.invalidate(token)
                continue
            raise WeComError(code=str(code), message=str(body.get("errmsg", "")))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ app messages (§7.2)

    def send_message(self, *, user_ids: list[str], msgtype: str,
                     content: dict[str, Any]) -> dict[str, Any]:
        """Send an app message to users; returns WeCom's answer (msgid, response_code)."""
        body = {"touser": "|".join(user_ids), "msgtype": msgtype,
                "agentid": int(self.agent_id), msgtype: content}
        result = self._api("POST", "/cgi-bin/message/send", json=body)
        if result.get("invaliduser"):
            log.warning("wecom message: some recipients are not members of the app's range")
        return result

    def update_card_button(self, *, user_ids: list[str], response_code: str,
                           replace_name: str) -> bool:
        """Replace the clicked card's button text; False when it was updated already (60140)."""
        body = {"userids": user_ids, "agentid": int(self.agent_id),
                "response_code": response_code, "button": {"replace_name": replace_name}}
        try:
            self._api("POST", "/cgi-bin/message/update_template_card", json=body)
        except WeComError as exc:
            if exc.code == str(CARD_ALREADY_UPDATED):
                return False
            raise
        return True

    # ------------------------------------------------------------------ H5 login (§9)

    def userid_from_code(self, code: str) -> str:
        """The member an OAuth2 code was issued to; WeComError when it is not a member's."""
        body = self._api("GET", "/cgi-bin/auth/getuserinfo", params={"code": code})
        userid = body.get("userid") or body.get("UserId")
        if not userid:
            raise WeComError(code="not-member", message="the code belongs to a non-member")
        return str(userid)

    # ------------------------------------------------------------------ group robots (§6)

    def send_webhook(self, *, webhook: str, body: dict[str, Any]) -> None:
        """Post to a group robot webhook (the key in its URL is the credential), or to an AI
        bot's response_url: neither takes a token."""
        result = self._request("POST", webhook, json=body)
        code = int(result.get("errcode") or 0)
        if code != 0:
            raise WeComError(code=str(code), message=str(result.get("errmsg", "")))


def split_markdown(text: str, limit: int = MARKDOWN_MAX_BYTES) -> list[str]:
    """Markdown in pieces of at most `limit` UTF-8 bytes, cut at line ends, each but the last
    marked （续）."""
    room = limit - len(CONTINUED.encode())
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= room:
            current = candidate
            continue
        if current:
            pieces.append(current)
        # A single line longer than a piece is cut at a character boundary.
        while len(line.encode()) > room:
            # "ignore" drops a character cut in half at the end of the bytes.
            head = line.encode()[:room].decode("utf-8", "ignore")
            pieces.append(head)
            line = line[len(head):]
        current = line
    pieces.append(current)
    return [p + CONTINUED for p in pieces[:-1]] + pieces[-1:]


def truncate_markdown(text: str, limit: int = MARKDOWN_MAX_BYTES) -> str:
    """Markdown cut to `limit` UTF-8 bytes, the cut marked, for channels that take one message."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(TRUNCATED.encode())
    return text.encode()[:room].decode("utf-8", "ignore") + TRUNCATED


def image_body(png: bytes) -> dict[str, Any]:
    """A group-robot image message: base64 and md5 of the raw bytes (at most 2 MB)."""
    if len(png) > IMAGE_MAX_BYTES:
        raise ValueError(f"image of {len(png)} bytes is over WeCom's 2 MB limit")
    encoded = base64.b64encode(png).decode()
    return {"msgtype": "image", "image": {"base64": encoded, "md5": hashlib.md5(png).hexdigest()}}
