"""Building the bot: the dispatcher with every command router."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from app.config import Settings
from app.ports import LoginRejected
from bot.commands import ROUTERS, fallback
from bot.dingtalk.adapter import DingTalkDeliverer, handle_bot_message, handle_card_click
from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.dingtalk.stream import StreamClient
from bot.dispatcher import Dispatcher


class DingTalkLogin:
    """The DingTalk H5 login port: a requestAuthCode code to a userid (platforms.md §4)."""

    def __init__(self, client: DingTalkClient) -> None:
        self.client = client

    def userid_for_code(self, code: str) -> str:
        """The userid the code was issued to; LoginRejected when DingTalk refuses it."""
        try:
            return self.client.userid_from_auth_code(code)
        except DingTalkError as exc:
            raise LoginRejected(f"{exc.code} {exc.message}") from None


def build_dispatcher(*, engine: Engine, settings: Settings,
                     on_queued: Callable[[], None] = lambda: None) -> Dispatcher:
    """The one dispatcher every channel feeds; `on_queued` runs when a message queued posts."""
    return Dispatcher(engine=engine, settings=settings, routers=ROUTERS, fallback=fallback,
                      on_queued=on_queued)


def dingtalk_deliverer(settings: Settings, http: httpx.Client) -> DingTalkDeliverer:
    """Sends replies and notifications through the configured DingTalk app."""
    return DingTalkDeliverer(client=DingTalkClient.from_settings(settings, http),
                             card_template_id=settings.dingtalk_card_template_id,
                             clock=time.time)


def dingtalk_stream(
    *, settings: Settings, dispatcher: Dispatcher, deliverer: DingTalkDeliverer, **options: Any
) -> StreamClient:
    """The Stream-mode connection feeding robot messages and card clicks to `dispatcher`."""
    return StreamClient(
        http_base=settings.dingtalk_api_base,
        client_id=settings.dingtalk_client_id,
        client_secret=settings.dingtalk_client_secret.get_secret_value(),
        on_bot_message=lambda payload: handle_bot_message(
            payload=payload, dispatcher=dispatcher, deliverer=deliverer),
        on_card_callback=lambda payload: handle_card_click(
            payload=payload, dispatcher=dispatcher, deliverer=deliverer),
        **options,
    )
