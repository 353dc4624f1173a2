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
from bot.outbox_worker import RobotSender, Sender
from bot.wecom.adapter import WeComDeliverer, robot_sender
from bot.wecom.callback import WeComChannel
from bot.wecom.client import WeComClient, WeComError
from bot.wecom.crypto import WeComCrypto, WeComCryptoError


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


class WeComLogin:
    """The WeCom H5 login port: an OAuth2 code to a userid (platforms.md §9)."""

    def __init__(self, client: WeComClient) -> None:
        self.client = client

    def userid_for_code(self, code: str) -> str:
        """The member the code was issued to; LoginRejected when WeCom refuses it."""
        try:
            return self.client.userid_from_code(code)
        except WeComError as exc:
            raise LoginRejected(f"{exc.code} {exc.message}") from None


def _crypto(token: str, key: str, receive_id: str, what: str) -> WeComCrypto | None:
    if not (token and key):
        return None
    try:
        return WeComCrypto(token=token, encoding_aes_key=key, receive_id=receive_id)
    except WeComCryptoError:
        raise ValueError(f"{what} 不是有效的 EncodingAESKey（应为 43 个字符）") from None


def wecom_channel(settings: Settings, http: httpx.Client) -> WeComChannel | None:
    """The WeCom app and AI bot as configured, or None when WeCom is not configured at all."""
    app_crypto = _crypto(settings.wecom_token.get_secret_value(),
                         settings.wecom_encoding_aes_key.get_secret_value(),
                         settings.wecom_corp_id, "WECOM_ENCODING_AES_KEY")
    # Internal AI bots encrypt with an empty receiveid (§8.1).
    aibot_crypto = _crypto(settings.wecom_aibot_token.get_secret_value(),
                           settings.wecom_aibot_encoding_aes_key.get_secret_value(), "",
                           "WECOM_AIBOT_ENCODING_AES_KEY")
    if not (settings.wecom_corp_id or aibot_crypto or settings.wecom_aibot_id):
        return None
    client = WeComClient.from_settings(settings, http)
    deliverer = WeComDeliverer(client=client, app_enabled=settings.wecom_app_configured)
    return WeComChannel(app_crypto, aibot_crypto, client, deliverer)


def wecom_senders(settings: Settings, channel: WeComChannel,
                  picture: Callable[[str], bytes | None]) -> tuple[Sender, RobotSender]:
    """The outbox senders for WeCom: app messages and AI-bot posts, and group robots."""
    return channel.deliverer.notify, robot_sender(channel.client, picture)


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
