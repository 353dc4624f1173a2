"""DingTalk HTTP-mode robot callback: verify, answer at once, handle in the background."""

from __future__ import annotations

import json
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bot.background import HandlerPool
from bot.dingtalk.adapter import DingTalkDeliverer, dispatch_bot_message
from bot.dingtalk.signing import SignatureError, verify_callback
from bot.dispatcher import Dispatcher

log = logging.getLogger(__name__)
router = APIRouter(tags=["dingtalk"])


@router.post("/bot/dingtalk/callback")
async def dingtalk_callback(request: Request) -> JSONResponse:
    """Receive a robot message: signature first, then 200 at once; the reply follows."""
    settings = request.app.state.settings
    deliverer: DingTalkDeliverer | None = request.app.state.dingtalk
    secret = settings.dingtalk_client_secret.get_secret_value()
    if deliverer is None or not secret:
        log.warning("dingtalk callback refused: DingTalk is not configured")
        return JSONResponse({"error": "DingTalk 未配置"}, 503)
    client_ip = request.client.host if request.client else "?"
    try:
        verify_callback(
            timestamp=request.headers.get("timestamp"),
            sign=request.headers.get("sign"),
            secret=secret,
            now_ms=int(time.time() * 1000),
        )
    except SignatureError as exc:
        log.warning("dingtalk callback rejected from %s: %s", client_ip, exc.reason)
        return JSONResponse({"error": "签名校验失败"}, 401)
    try:
        payload = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("dingtalk callback from %s is not JSON", client_ip)
        return JSONResponse({"error": "请求体不是 JSON"}, 400)
    if not isinstance(payload, dict):
        return JSONResponse({"error": "请求体格式不对"}, 400)
    dispatcher: Dispatcher = request.app.state.dispatcher
    handlers: HandlerPool = request.app.state.chat_handlers
    # Handled after the response so DingTalk never waits on the database or the reply.
    if not handlers.submit(dispatch_bot_message, payload=payload, dispatcher=dispatcher,
                           deliverer=deliverer):
        return JSONResponse({"error": "服务正在重启，请稍后再试"}, 503)
    return JSONResponse({})
