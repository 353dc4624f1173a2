"""DingTalk OpenAPI client: tokens, robot messages, webhooks, interactive cards and H5 login.

Synchronous httpx on purpose: it is called from the dispatcher's worker threads and from the
scheduler, never from an event loop. One instance is shared by every thread, so the two token
caches are guarded by locks.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from bot.dingtalk.signing import robot_webhook_url
from bot.token_cache import TokenCache

if TYPE_CHECKING:
    from app.config import Settings

__all__ = ["MSG_PARAM_MAX_BYTES", "DingTalkClient", "DingTalkError"]

log = logging.getLogger(__name__)

MSG_PARAM_MAX_BYTES = 15_000
# Throttling codes: 130101 is observed on custom robots, 410100 is said to replace it.
RATE_LIMIT_CODES = frozenset({"130101", "410100"})
# oapi errcodes meaning "this access_token is unknown or expired": refetch it and retry once.
OAPI_STALE_TOKEN_CODES = frozenset({"40014", "42001"})


class DingTalkError(Exception):
    """A DingTalk call that failed; `retryable` says whether trying again later may succeed."""

    def __init__(
        self, *, code: str, message: str, status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(f"DingTalk error {code} (HTTP {status}): {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable


class _RedactCredentials(logging.Filter):
    """Blank credentials that DingTalk carries in query strings out of third-party log lines.

    httpx logs every request URL at INFO, and `gettoken?appsecret=`, `?access_token=`, a custom
    robot's `sign` and a sessionWebhook's `session` would otherwise land in the logs.
    """

    _PATTERN = re.compile(
        r"((?:access_token|appsecret|corpsecret|sign|session|ticket|key|code)=)[^&\s\"']+", re.I)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._PATTERN.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction() -> None:
    """Attach the credential filter to the httpx and websockets loggers (idempotent)."""
    for name in ("httpx", "websockets.client"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactCredentials) for f in logger.filters):
            logger.addFilter(_RedactCredentials())


install_log_redaction()


def _retryable(*, code: str, status: int | None) -> bool:
    if code in RATE_LIMIT_CODES:
        return True
    return status is None or status >= 500 or status == 429


def _safe_target(url: str) -> str:
    """Host and path only: webhook and oapi URLs carry tokens in their query strings."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


class DingTalkClient:
    """The enterprise-internal app's OpenAPI client (api.dingtalk.com and oapi.dingtalk.com)."""

    def __init__(
        self,
        *,
        http: httpx.Client,
        api_base: str,
        oapi_base: str,
        client_id: str,
        client_secret: str,
        robot_code: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._oapi_base = oapi_base.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self.robot_code = robot_code or client_id
        self._clock = clock
        self._app_token = TokenCache(self._fetch_app_token, clock)
        self._oapi_token = TokenCache(self._fetch_oapi_token, clock)

    def __repr__(self) -> str:
        return f"DingTalkClient(api_base={self._api_base!r}, client_id={self._client_id!r})"

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client) -> DingTalkClient:
        """A client configured from the DINGTALK_* settings."""
        return cls(
            http=http,
            api_base=settings.dingtalk_api_base,
            oapi_base=settings.dingtalk_oapi_base,
            client_id=settings.dingtalk_client_id,
            client_secret=settings.dingtalk_client_secret.get_secret_value(),
            robot_code=settings.robot_code,
        )

    # ----------------------------------------------------------------- robot messages (§3.2)

    def send_group(self, *, open_conversation_id: str, msg_key: str, msg_param: dict) -> str:
        """Post a robot message into a group the robot belongs to; returns the processQueryKey."""
        body = {
            "robotCode": self.robot_code,
            "openConversationId": open_conversation_id,
            "msgKey": msg_key,
            "msgParam": _encode_msg_param(msg_param),
        }
        result = self._api("POST", "/v1.0/robot/groupMessages/send", body)
        return str(result.get("processQueryKey", ""))

    def send_single(self, *, user_ids: list[str], msg_key: str, msg_param: dict) -> str:
        """Send a robot message to users in 1:1 chats; returns the processQueryKey."""
        if not user_ids:
            raise ValueError("send_single needs at least one user id")
        body = {
            "robotCode": self.robot_code,
            "userIds": list(user_ids),
            "msgKey": msg_key,
            "msgParam": _encode_msg_param(msg_param),
        }
        result = self._api("POST", "/v1.0/robot/oToMessages/batchSend", body)
        return str(result.get("processQueryKey", ""))

    # ----------------------------------------------------------------- webhooks (§1.4, §3.1)

    def send_session_webhook(self, *, url: str, body: dict) -> None:
        """Reply through a callback's sessionWebhook (no token; it expires after about 90 min)."""
        self._webhook(url, body)

    def send_custom_robot(self, *, webhook: str, secret: str | None, body: dict) -> None:
        """Post to a custom group robot, signing the URL when the robot has a secret."""
        url = robot_webhook_url(webhook, secret, int(self._clock() * 1000)) if secret else webhook
        self._webhook(url, body)

    # ----------------------------------------------------------------- cards (§3.4)

    def create_card(
        self,
        *,
        out_track_id: str,
        template_id: str,
        card_param_map: dict[str, str],
        open_conversation_id: str | None = None,
        user_id: str | None = None,
        at_user_ids: dict[str, str] | None = None,
    ) -> None:
        """Create an interactive card with STREAM callbacks and deliver it to a group or a user."""
        if (open_conversation_id is None) == (user_id is None):
            raise ValueError("create_card needs exactly one of open_conversation_id or user_id")
        body: dict[str, Any] = {
            "cardTemplateId": template_id,
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": _check_param_map(card_param_map)},
            "callbackType": "STREAM",
            "userIdType": 1,
        }
        if open_conversation_id is not None:
            deliver: dict[str, Any] = {"robotCode": self.robot_code}
            if at_user_ids:
                deliver["atUserIds"] = dict(at_user_ids)
            body |= {
                "openSpaceId": f"dtv1.card//IM_GROUP.{open_conversation_id}",
                "imGroupOpenSpaceModel": {"supportForward": True},
                "imGroupOpenDeliverModel": deliver,
            }
        else:
            body |= {
                "openSpaceId": f"dtv1.card//IM_ROBOT.{user_id}",
                "imRobotOpenSpaceModel": {"supportForward": False},
                "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.robot_code},
            }
        result = self._api("POST", "/v1.0/card/instances/createAndDeliver", body)
        # The HTTP call succeeds even when delivery to the space failed; that is an error to us.
        payload = result.get("result") or {}
        for item in payload.get("deliverResults") or []:
            if not item.get("success", True):
                raise DingTalkError(
                    code="card.deliverFailed",
                    message=str(item.get("errorMsg") or "card delivery failed"),
                    status=200,
                )

    def update_card(self, *, out_track_id: str, card_param_map: dict[str, str]) -> None:
        """Merge `card_param_map` into a delivered card's public data."""
        body = {
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": _check_param_map(card_param_map)},
            "cardUpdateOptions": {"updateCardDataByKey": True},
        }
        self._api("PUT", "/v1.0/card/instances", body)

    # ----------------------------------------------------------------- H5 login (§4)

    def userid_from_auth_code(self, code: str) -> str:
        """Exchange a JSAPI requestAuthCode code (single use, 5 min) for the user's userid."""
        result = self._oapi("/topapi/v2/user/getuserinfo", {"code": code})
        userid = (result.get("result") or {}).get("userid")
        if not userid:
            raise DingTalkError(code="missing.userid", message="no userid in answer", status=200)
        return str(userid)

    # ----------------------------------------------------------------- plumbing

    def _fetch_app_token(self) -> tuple[str, int]:
        data = self._request(
            "POST",
            f"{self._api_base}/v1.0/oauth2/accessToken",
            json={"appKey": self._client_id, "appSecret": self._client_secret},
        )
        token = data.get("accessToken")
        if not token:
            raise DingTalkError(
                code="missing.accessToken", message="no token in answer", status=200
            )
        log.info("dingtalk app token fetched")
        return str(token), int(data.get("expireIn", 7200))

    def _fetch_oapi_token(self) -> tuple[str, int]:
        data = self._request(
            "GET",
            f"{self._oapi_base}/gettoken",
            params={"appkey": self._client_id, "appsecret": self._client_secret},
        )
        _raise_for_errcode(data)
        log.info("dingtalk oapi token fetched")
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    def _api(self, method: str, path: str, body: dict) -> dict:
        """A v1.0 call with the app token; a 401 refreshes the token once and retries once."""
        token = self._app_token.get()
        try:
            return self._request(method, f"{self._api_base}{path}", json=body, token=token)
        except DingTalkError as exc:
            if exc.status != 401:
                raise
            log.info("dingtalk %s answered 401; refreshing the app token once", path)
            self._app_token.invalidate(token)
        token = self._app_token.get()
        return self._request(method, f"{self._api_base}{path}", json=body, token=token)

    def _oapi(self, path: str, form: dict[str, str]) -> dict:
        """A legacy topapi call with the oapi token; a stale-token errcode refreshes it once."""
        for attempt in range(2):
            token = self._oapi_token.get()
            data = self._request(
                "POST", f"{self._oapi_base}{path}", params={"access_token": token}, data=form
            )
            code = str(data.get("errcode", 0))
            if code in OAPI_STALE_TOKEN_CODES and attempt == 0:
                log.info("dingtalk %s rejected the oapi token (%s); refreshing once", path, code)
                self._oapi_token.invalidate(token)
                continue
            _raise_for_errcode(data)
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _webhook(self, url: str, body: dict) -> None:
        data = self._request("POST", url, json=body)
        _raise_for_errcode(data)

    def _request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> dict:
        """One HTTP exchange; every failure becomes a DingTalkError without URL, token or body."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["x-acs-dingtalk-access-token"] = token
        try:
            response = self._http.request(
                method, url, json=json, params=params, data=data, headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("dingtalk %s %s failed: %s", method, _safe_target(url),
                        type(exc).__name__)
            raise DingTalkError(
                code="network", message=type(exc).__name__, status=None, retryable=True
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400 or not isinstance(payload, dict):
            code, message = _v1_error(payload, response)
            log.warning(
                "dingtalk %s %s -> HTTP %s code=%s", method, _safe_target(url),
                response.status_code, code,
            )
            raise DingTalkError(
                code=code,
                message=message,
                status=response.status_code,
                retryable=_retryable(code=code, status=response.status_code),
            )
        return payload


def _v1_error(payload: Any, response: httpx.Response) -> tuple[str, str]:
    if isinstance(payload, dict):
        code = payload.get("code") or payload.get("errcode") or f"http.{response.status_code}"
        message = payload.get("message") or payload.get("errmsg") or response.reason_phrase
        return str(code), str(message)
    return f"http.{response.status_code}", response.reason_phrase or "non-JSON answer"


def _raise_for_errcode(data: dict) -> None:
    """oapi and webhooks answer HTTP 200 with a non-zero errcode on business errors."""
    code = str(data.get("errcode", 0))
    if code != "0":
        log.warning("dingtalk answered errcode=%s", code)
        raise DingTalkError(
            code=code,
            message=str(data.get("errmsg", "")),
            status=200,
            retryable=_retryable(code=code, status=200),
        )


def _encode_msg_param(msg_param: dict) -> str:
    """msgParam travels as a JSON string; DingTalk refuses more than 15,000 bytes of it."""
    encoded = json.dumps(msg_param, ensure_ascii=False, separators=(",", ":"))
    size = len(encoded.encode("utf-8"))
    if size > MSG_PARAM_MAX_BYTES:
        raise DingTalkError(
            code="local.msgParamTooLarge",
            message=f"msgParam is {size} bytes; DingTalk accepts at most {MSG_PARAM_MAX_BYTES}",
        )
    return encoded


def _check_param_map(card_param_map: dict[str, str]) -> dict[str, str]:
    """cardParamMap values must be strings; DingTalk rejects numbers and nested objects."""
    for key, value in card_param_map.items():
        if not isinstance(value, str):
            raise TypeError(f"cardParamMap[{key!r}] must be a str, got {type(value).__name__}")
    return dict(card_param_map)
