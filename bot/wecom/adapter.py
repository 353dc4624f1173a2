"""WeCom ⇄ neutral types: app and AI-bot messages in; markdown, template cards and posts out."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from app.models import Platform
from bot.dispatcher import Dispatcher
from bot.outbox_worker import RobotHook, RobotSender
from bot.types import (
    CardAction,
    ChatType,
    Delivery,
    IncomingMessage,
    Notification,
    Outcome,
    Reply,
)
from bot.wecom.client import (
    APP_MARKDOWN_MAX_BYTES,
    WeComClient,
    WeComError,
    image_body,
    split_markdown,
)

log = logging.getLogger(__name__)

# A card's button text after a click; longer verdicts are cut (WeCom shows a short button).
BUTTON_TEXT_MAX = 20
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)+\s*")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)\n*")


# ---------------------------------------------------------------------------- inbound


def message_from_app(fields: dict[str, str], *, received_at: datetime) -> IncomingMessage | None:
    """A text message sent to the app 1:1 (decrypted XML, §5.2), or None for other types."""
    if fields.get("MsgType") != "text" or not fields.get("FromUserName"):
        return None
    userid = fields["FromUserName"]
    return IncomingMessage(
        platform=Platform.WECOM, chat_id=userid, chat_type=ChatType.SINGLE,
        sender_userid=userid, text=fields.get("Content", "").strip(),
        message_id=f"app:{fields.get('MsgId') or userid + ':' + fields.get('CreateTime', '')}",
        received_at=received_at, raw=dict(fields))


def message_from_aibot(payload: dict[str, Any], *, received_at: datetime) -> IncomingMessage | None:
    """An AI-bot message (callback plaintext or long-connection body, §8.1); None if not text."""
    msgtype = payload.get("msgtype")
    if msgtype == "text":
        text = str((payload.get("text") or {}).get("content", ""))
    elif msgtype == "voice":
        text = str((payload.get("voice") or {}).get("content", ""))
    else:
        return None
    userid = str((payload.get("from") or {}).get("userid", ""))
    group = payload.get("chattype") == "group"
    return IncomingMessage(
        platform=Platform.WECOM,
        chat_id=str(payload.get("chatid") or userid) if group else userid,
        chat_type=ChatType.GROUP if group else ChatType.SINGLE,
        sender_userid=userid or None,
        # In groups the bot only hears messages that @ it; the mention is not part of the command.
        text=_LEADING_MENTIONS.sub("", text).strip(),
        message_id=f"aibot:{payload.get('msgid', '')}",
        received_at=received_at, raw=payload)


def card_action_from_event(fields: dict[str, str]) -> CardAction | None:
    """A template_card_event (§7.4) as a CardAction; None when it is not one of our buttons."""
    key, task_id, userid = fields.get("EventKey", ""), fields.get("TaskId", ""), \
        fields.get("FromUserName", "")
    action, _, query = key.partition("|")
    if not (action and task_id and userid):
        return None
    return CardAction(Platform.WECOM, userid, card_id_of(task_id), action,
                      dict(parse_qsl(query)),
                      # FromUserName+CreateTime as WeCom advises, with what makes two clicks
                      # within one second apart: a redelivery repeats its ResponseCode.
                      event_id=f"event:{userid}:{fields.get('CreateTime', '')}:"
                               f"{fields.get('ResponseCode', '')}")


# ---------------------------------------------------------------------------- outbound


def markdown_of(reply: Reply, *, mention: str | None = None) -> str:
    """The reply as WeCom markdown; buttons become their commands, a mention goes last."""
    text = reply.text
    commands = [f"{b.label}：发送 {b.command}" for b in reply.buttons if b.command]
    if commands:
        text += "\n\n" + "\n".join(f"> {c}" for c in commands)
    if mention:
        text += f"\n<@{mention}>"
    return text


def task_id_for(card_id: str, userid: str) -> str:
    """A card's WeCom task id: unique per app, so per recipient too ([0-9A-Za-z_-@], ≤128 B)."""
    safe = re.sub(r"[^0-9A-Za-z_\-@]", "_", card_id)[:100]
    return f"{safe}-{hashlib.sha1(userid.encode()).hexdigest()[:10]}"


def card_id_of(task_id: str) -> str:
    """The card id a task id was made from."""
    return task_id.rsplit("-", 1)[0]


def template_card(reply: Reply, *, userid: str) -> dict[str, Any]:
    """A button_interaction template card for a reply with buttons (§7.4)."""
    assert reply.card_id is not None
    first, _, rest = reply.text.partition("\n")
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "task_id": task_id_for(reply.card_id, userid),
        "source": {"desc": "党员积分助手"},
        "main_title": {"title": reply.title, "desc": first[:44]},
        "button_list": [
            {"text": b.label, "style": 1 if i == 0 else 2,
             "key": f"{b.action}|{urlencode(b.params)}"}
            for i, b in enumerate(reply.buttons[:6])],
    }
    if rest:
        card["sub_title_text"] = rest
    return card


class AibotLink(Protocol):
    """The AI bot's long connection, for proactive posts to the groups it is in."""

    def send_markdown(self, *, chat_id: str, content: str) -> None:
        """Post markdown to a group (or 1:1 chat) through `aibot_send_msg`."""


class WeComDeliverer:
    """Sends notifications through WeCom: app messages and cards 1:1, AI-bot posts to groups."""

    def __init__(self, *, client: WeComClient, app_enabled: bool,
                 aibot: AibotLink | None = None) -> None:
        self.client = client
        # Without the app's credentials only group robots and the AI bot can post.
        self.app_enabled = app_enabled
        self.aibot = aibot

    def notify(self, note: Notification) -> None:
        """Send one notification; raises WeComError so the outbox can retry or give up."""
        reply = note.reply
        if note.user_id:
            if not self.app_enabled:
                raise WeComError(code="not-configured", message="WeCom app is not configured")
            if reply.buttons and reply.card_id:
                self.client.send_message(user_ids=[note.user_id], msgtype="template_card",
                                         content=template_card(reply, userid=note.user_id))
            else:
                self.markdown_to(note.user_id, markdown_of(reply))
            return
        if note.chat_id and self.aibot is not None:
            for piece in split_markdown(markdown_of(reply)):
                self.aibot.send_markdown(chat_id=note.chat_id, content=piece)
            return
        # An app cannot post into groups its members created (§7.3): only a group robot
        # webhook or the AI bot's long connection can, and this group has neither.
        raise WeComError(code="no-route",
                         message="group has no robot webhook and no AI-bot connection here")

    def markdown_to(self, userid: str, markdown: str) -> None:
        """App markdown to one member 1:1, in pieces of at most 2048 bytes."""
        for piece in split_markdown(markdown, APP_MARKDOWN_MAX_BYTES):
            self.client.send_message(user_ids=[userid], msgtype="markdown",
                                     content={"content": piece})

    def send(self, note: Notification) -> None:
        """Send one notification from a chat answer; a failure is logged, never raised."""
        try:
            self.notify(note)
        except WeComError as exc:
            log.warning("wecom notification to %s failed: %s", note.user_id or note.chat_id,
                        exc.code)


def robot_sender(client: WeComClient, picture: Callable[[str], bytes | None]) -> RobotSender:
    """Posts to a WeCom group robot: a picture the markdown links to, then the text in pieces.

    WeCom markdown cannot show images, so our own pictures (`picture` resolves their URLs)
    go first as image messages.
    """
    def send(hook: RobotHook, note: Notification) -> None:
        text = markdown_of(note.reply)
        for url in _MARKDOWN_IMAGE.findall(text):
            png = picture(url)
            if png is not None:
                client.send_webhook(webhook=hook.webhook, body=image_body(png))
        for piece in split_markdown(_MARKDOWN_IMAGE.sub("", text).strip()):
            client.send_webhook(webhook=hook.webhook,
                                body={"msgtype": "markdown", "markdown": {"content": piece}})

    return send


# ---------------------------------------------------------------------------- handling


def dispatch_message(*, message: IncomingMessage, dispatcher: Dispatcher,
                     respond: Callable[[str], None], deliverer: WeComDeliverer
                     ) -> Delivery | None:
    """Dispatch one message; what it produced is returned to be sent (None: nothing).
    `respond` carries the reply back into the same chat."""
    outcome = dispatcher.dispatch(message)
    if outcome is None:
        return None
    return partial(_deliver, message, outcome, respond, deliverer)


def handle_message(*, message: IncomingMessage, dispatcher: Dispatcher,
                   respond: Callable[[str], None], deliverer: WeComDeliverer) -> None:
    """Dispatch one message and send what it produced, in this thread (the long connection)."""
    delivery = dispatch_message(message=message, dispatcher=dispatcher, respond=respond,
                                deliverer=deliverer)
    if delivery is not None:
        delivery()


def _deliver(message: IncomingMessage, outcome: Outcome, respond: Callable[[str], None],
             deliverer: WeComDeliverer) -> None:
    if outcome.reply is not None:
        mention = (message.sender_userid
                   if outcome.reply.mention_sender and message.chat_type is ChatType.GROUP
                   else None)
        try:
            respond(markdown_of(outcome.reply, mention=mention))
        except WeComError as exc:
            log.warning("wecom reply to %s failed: %s %s", message.message_id, exc.code,
                        exc.message)
    for note in outcome.notifications:
        deliverer.send(note)


def aibot_message_handler(*, dispatcher: Dispatcher, deliverer: WeComDeliverer,
                          respond: Callable[[str, str], None]) -> Callable[[str, dict[str, Any]],
                                                                           None]:
    """The long connection's message handler; `respond(req_id, markdown)` answers a message."""
    def on_message(req_id: str, body: dict[str, Any]) -> None:
        message = message_from_aibot(body, received_at=datetime.now(UTC))
        if message is not None:
            handle_message(message=message, dispatcher=dispatcher, deliverer=deliverer,
                           respond=lambda markdown: respond(req_id, markdown))

    return on_message


def handle_card_event(*, fields: dict[str, str], dispatcher: Dispatcher,
                      deliverer: WeComDeliverer) -> Outcome | None:
    """Apply a card click; the clicker's card shows the verdict, a refusal goes to them 1:1."""
    action = card_action_from_event(fields)
    if action is None:
        log.warning("unreadable wecom card event for task %s", fields.get("TaskId"))
        return None
    outcome = dispatcher.card_action(action)
    client = deliverer.client
    if outcome.reply is not None:
        try:
            if outcome.refused:
                deliverer.markdown_to(action.user_id, outcome.reply.text)
            elif fields.get("ResponseCode") and not client.update_card_button(
                    user_ids=[action.user_id], response_code=fields["ResponseCode"],
                    replace_name=outcome.reply.text[:BUTTON_TEXT_MAX]):
                log.info("wecom card %s was updated already", fields.get("TaskId"))
        except WeComError as exc:
            log.warning("wecom card answer for %s failed: %s", fields.get("TaskId"), exc.code)
    for note in outcome.notifications:
        deliverer.send(note)
    return outcome
