"""DingTalk ⇄ neutral types: robot messages in, replies, notifications and cards out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from app.models import Platform
from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.dispatcher import Dispatcher
from bot.types import (
    CardAction,
    ChatType,
    Delivery,
    IncomingMessage,
    Notification,
    Outcome,
    Reply,
)

log = logging.getLogger(__name__)

# A session webhook this close to expiry is not worth the risk; use the OpenAPI instead.
WEBHOOK_MARGIN_MS = 10_000


def message_from_payload(payload: dict[str, Any], *, received_at: datetime) -> IncomingMessage:
    """A robot message (HTTP callback body or Stream frame data, §1.3) as an IncomingMessage."""
    content = payload.get("text", {}).get("content", "") if payload.get("msgtype") == "text" else ""
    return IncomingMessage(
        platform=Platform.DINGTALK,
        chat_id=str(payload.get("conversationId", "")),
        chat_type=ChatType.GROUP
        if str(payload.get("conversationType")) == "2"
        else ChatType.SINGLE,
        # senderId is an opaque per-robot id; the roster knows people by senderStaffId.
        sender_userid=payload.get("senderStaffId") or None,
        text=str(content).strip(),
        message_id=str(payload.get("msgId", "")),
        received_at=received_at,
        chat_title=str(payload.get("conversationTitle", "")),
        sender_name=str(payload.get("senderNick", "")),
        raw=payload,
    )


def markdown_of(reply: Reply) -> str:
    """The reply as DingTalk markdown; buttons become the equivalent commands."""
    text = reply.text
    commands = [f"{b.label}：发送 {b.command}" for b in reply.buttons if b.command]
    if commands:
        text += "\n\n" + "\n".join(f"- {c}" for c in commands)
    return text.replace("\n", "\n\n") if not reply.markdown else text


def card_params(reply: Reply) -> dict[str, str]:
    """The cardParamMap our approval card template reads (docs/dingtalk.md)."""
    params = {"title": reply.title, "content": reply.text, "status": ""}
    for button in reply.buttons:
        params.update(button.params)
    return params


class DingTalkDeliverer:
    """Sends outcomes through DingTalk: replies by session webhook or OpenAPI, cards 1:1."""

    def __init__(
        self, *, client: DingTalkClient, card_template_id: str, clock: Callable[[], float]
    ) -> None:
        self.client = client
        self.card_template_id = card_template_id
        self.clock = clock

    def deliver(self, message: IncomingMessage, outcome: Outcome) -> None:
        """Send the reply into the chat it answers and every notification; log failures."""
        if outcome.reply is not None:
            reply = outcome.reply
            self._guard(lambda: self._reply(message, reply), f"reply to {message.message_id}")
        for note in outcome.notifications:
            self.send(note)

    def send(self, note: Notification) -> None:
        """Send one notification; a failure is logged, never raised."""
        self._guard(lambda: self.notify(note), f"notification to {note.user_id or note.chat_id}")

    def _guard(self, send: Callable[[], None], what: str) -> None:
        try:
            send()
        except DingTalkError as exc:
            # Retries belong to the outbox (scheduler work); the chat must not fail over them.
            log.warning("dingtalk %s failed: %s %s", what, exc.code, exc.message)

    def _reply(self, message: IncomingMessage, reply: Reply) -> None:
        group = message.chat_type is ChatType.GROUP
        mention = message.sender_userid if reply.mention_sender and group else None
        text = markdown_of(reply)
        if mention:
            # DingTalk renders the mention only where "@userid" appears in the text; at the end
            # it cannot break a leading markdown heading.
            text = f"{text}\n\n@{mention}"
        webhook = message.raw.get("sessionWebhook")
        expires = int(message.raw.get("sessionWebhookExpiredTime") or 0)
        if webhook and expires > self.clock() * 1000 + WEBHOOK_MARGIN_MS:
            body: dict[str, Any] = {
                "msgtype": "markdown",
                "markdown": {"title": reply.title, "text": text},
            }
            if mention:
                body["at"] = {"atUserIds": [mention]}
            self.client.send_session_webhook(url=webhook, body=body)
        elif group:
            self.client.send_group(
                open_conversation_id=message.chat_id,
                msg_key="sampleMarkdown",
                msg_param={"title": reply.title, "text": text},
            )
        elif message.sender_userid:
            self.client.send_single(
                user_ids=[message.sender_userid],
                msg_key="sampleMarkdown",
                msg_param={"title": reply.title, "text": text},
            )

    def notify(self, note: Notification) -> None:
        """A notification: a card when it has buttons and a template is set up, else markdown."""
        reply = note.reply
        if reply.buttons and self.card_template_id and reply.card_id:
            where = ({"open_conversation_id": note.chat_id} if note.chat_id
                     else {"user_id": note.user_id})
            self.client.create_card(out_track_id=reply.card_id,
                                    template_id=self.card_template_id,
                                    card_param_map=card_params(reply), **where)
            return
        param = {"title": reply.title, "text": markdown_of(reply)}
        if note.chat_id:
            self.client.send_group(open_conversation_id=note.chat_id, msg_key="sampleMarkdown",
                                   msg_param=param)
        elif note.user_id:
            self.client.send_single(user_ids=[note.user_id], msg_key="sampleMarkdown",
                                    msg_param=param)


def card_action_from_payload(payload: dict[str, Any]) -> CardAction | None:
    """A card click (Stream topic /v1.0/card/instances/callback) as a CardAction."""
    try:
        content = json.loads(payload.get("content") or "{}")
    except json.JSONDecodeError:
        return None
    private = content.get("cardPrivateData") or {}
    actions = private.get("actionIds") or []
    if not actions or not payload.get("userId") or not payload.get("outTrackId"):
        return None
    params = {str(k): str(v) for k, v in (private.get("params") or {}).items()}
    return CardAction(
        Platform.DINGTALK,
        str(payload["userId"]),
        str(payload["outTrackId"]),
        str(actions[0]),
        params,
    )


def handle_card_click(
    *, payload: dict[str, Any], dispatcher: Dispatcher, deliverer: DingTalkDeliverer
) -> dict[str, Any] | None:
    """Apply a card click and return the card update DingTalk takes in the ack."""
    action = card_action_from_payload(payload)
    if action is None:
        log.warning("unreadable dingtalk card callback for %s", payload.get("outTrackId"))
        return None
    outcome = dispatcher.card_action(action)
    for note in outcome.notifications:
        deliverer.send(note)
    if outcome.reply is None:
        return None
    return {
        "cardData": {"cardParamMap": {"status": outcome.reply.text}},
        "cardUpdateOptions": {"updateCardDataByKey": True},
    }


def dispatch_bot_message(
    *, payload: dict[str, Any], dispatcher: Dispatcher, deliverer: DingTalkDeliverer
) -> Delivery | None:
    """Dispatch one robot message; what it produced is returned to be sent (None: nothing)."""
    message = message_from_payload(payload, received_at=datetime.now(UTC))
    if not message.message_id:
        log.warning("dingtalk robot message without msgId ignored")
        return None
    outcome = dispatcher.dispatch(message)
    return None if outcome is None else partial(deliverer.deliver, message, outcome)


def handle_bot_message(
    *, payload: dict[str, Any], dispatcher: Dispatcher, deliverer: DingTalkDeliverer
) -> None:
    """Dispatch one robot message and send what it produced, in this thread (Stream mode)."""
    delivery = dispatch_bot_message(payload=payload, dispatcher=dispatcher, deliverer=deliverer)
    if delivery is not None:
        delivery()
