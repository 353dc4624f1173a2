"""WeCom callbacks: the app's (XML) and the AI bot's (JSON). Verified and decrypted before
anything is parsed; answered at once with an empty 200, handled in the background."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from bot.background import HandlerPool
from bot.dispatcher import Dispatcher
from bot.wecom.adapter import (
    WeComDeliverer,
    dispatch_message,
    handle_card_event,
    message_from_aibot,
    message_from_app,
)
from bot.wecom.client import (
    WeComClient,
    truncate_markdown,
)
from bot.wecom.crypto import MAX_BODY_BYTES, WeComCrypto, WeComCryptoError

log = logging.getLogger(__name__)
router = APIRouter(tags=["wecom"])

REFUSED = PlainTextResponse("校验失败", 403)
NOT_CONFIGURED = PlainTextResponse("企业微信未配置", 503)
RESTARTING = PlainTextResponse("服务正在重启，请稍后再试", 503)


@dataclass(frozen=True)
class WeComChannel:
    """Everything the callbacks need: both cryptos (None when not configured), the client."""

    app_crypto: WeComCrypto | None
    aibot_crypto: WeComCrypto | None
    client: WeComClient
    deliverer: WeComDeliverer


def _channel(request: Request) -> WeComChannel | None:
    return getattr(request.app.state, "wecom", None)


def _handled_later(request: Request, handler: Callable[..., Any], **kwargs: Any) -> Response:
    """Queue the handler and answer WeCom's request at once with an empty 200."""
    handlers: HandlerPool = request.app.state.chat_handlers
    return Response(status_code=200) if handlers.submit(handler, **kwargs) else RESTARTING


def _query(request: Request) -> dict[str, str]:
    # Starlette has already URL-decoded them: echostr's "+", "/" and "=" arrive intact.
    q = request.query_params
    return {"msg_signature": q.get("msg_signature", ""), "timestamp": q.get("timestamp", ""),
            "nonce": q.get("nonce", "")}


async def _capped_body(request: Request) -> bytes | None:
    """The body, or None as soon as it grows past the cap (never buffered whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _verify_url(request: Request, crypto: WeComCrypto | None, which: str) -> Response:
    if crypto is None:
        log.warning("wecom %s url verification refused: not configured", which)
        return NOT_CONFIGURED
    try:
        plain = crypto.verify_url(echostr=request.query_params.get("echostr", ""),
                                  **_query(request))
    except WeComCryptoError as exc:
        log.warning("wecom %s url verification rejected from %s: %s %s", which,
                    _client_ip(request), exc.code, exc.reason)
        return REFUSED
    # Only the bare plaintext: no quotes, no newline (§5.1).
    return PlainTextResponse(plain)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _decrypted(request: Request, crypto: WeComCrypto | None, which: str,
                     decrypt: Callable[..., Any]) -> Any:
    """The verified, decrypted callback content, or a Response refusing it."""
    if crypto is None:
        log.warning("wecom %s callback refused: not configured", which)
        return NOT_CONFIGURED
    body = await _capped_body(request)
    if body is None:
        log.warning("wecom %s callback from %s refused: body over %d bytes", which,
                    _client_ip(request), MAX_BODY_BYTES)
        return PlainTextResponse("请求体过大", 413)
    try:
        return decrypt(crypto, body=body, **_query(request))
    except WeComCryptoError as exc:
        log.warning("wecom %s callback rejected from %s: %s %s", which, _client_ip(request),
                    exc.code, exc.reason)
        return REFUSED


@router.get("/bot/wecom/callback")
def wecom_app_verify(request: Request) -> Response:
    """URL verification of the app callback: verify, decrypt echostr, return the plaintext."""
    channel = _channel(request)
    return _verify_url(request, channel.app_crypto if channel else None, "app")


@router.post("/bot/wecom/callback")
async def wecom_app_callback(request: Request) -> Response:
    """A message or event sent to the app: verified and decrypted, then handled after the 200."""
    channel = _channel(request)
    fields = await _decrypted(request, channel.app_crypto if channel else None, "app",
                              WeComCrypto.decrypt_xml)
    if isinstance(fields, Response):
        return fields
    assert channel is not None
    dispatcher: Dispatcher = request.app.state.dispatcher
    if fields.get("MsgType") == "event":
        if fields.get("Event") == "template_card_event":
            return _handled_later(request, handle_card_event, fields=fields,
                                  dispatcher=dispatcher, deliverer=channel.deliverer)
        return Response(status_code=200)
    message = message_from_app(fields, received_at=datetime.now(UTC))
    if message is not None:
        userid = message.sender_userid or ""
        return _handled_later(request, dispatch_message, message=message, dispatcher=dispatcher,
                              respond=lambda markdown: channel.deliverer.markdown_to(userid,
                                                                                     markdown),
                              deliverer=channel.deliverer)
    return Response(status_code=200)


@router.get("/bot/wecom/aibot/callback")
def wecom_aibot_verify(request: Request) -> Response:
    """URL verification of the AI bot callback (receiveid "")."""
    channel = _channel(request)
    return _verify_url(request, channel.aibot_crypto if channel else None, "aibot")


@router.post("/bot/wecom/aibot/callback")
async def wecom_aibot_callback(request: Request) -> Response:
    """An AI-bot message: answered with an empty 200; the reply goes to its response_url."""
    channel = _channel(request)
    payload = await _decrypted(request, channel.aibot_crypto if channel else None, "aibot",
                               WeComCrypto.decrypt_json)
    if isinstance(payload, Response):
        return payload
    assert channel is not None
    message = message_from_aibot(payload, received_at=datetime.now(UTC))
    response_url = str(payload.get("response_url") or "")
    if message is None or not response_url:
        return Response(status_code=200)

    def respond(markdown: str) -> None:
        # A response_url takes one message: a long answer is cut, and says so.
        content = truncate_markdown(markdown)
        channel.client.send_webhook(webhook=response_url,
                                    body={"msgtype": "markdown", "markdown": {"content": content}})

    return _handled_later(request, dispatch_message, message=message,
                          dispatcher=request.app.state.dispatcher, respond=respond,
                          deliverer=channel.deliverer)
