"""Platform-neutral chat messages and replies: every adapter translates to and from these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.services.notices import Notice


class ChatType(StrEnum):
    """Where a message was written."""

    GROUP = "group"
    SINGLE = "single"


@dataclass(frozen=True)
class IncomingMessage:
    """One message from a person, as every platform's adapter produces it."""

    platform: str
    chat_id: str
    chat_type: ChatType
    sender_userid: str | None
    text: str
    message_id: str
    received_at: datetime
    chat_title: str = ""
    sender_name: str = ""
    from_bot: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Button:
    """A card button: an action id and parameters the click brings back."""

    label: str
    action: str
    params: dict[str, str] = field(default_factory=dict)
    # The chat command that does the same, for channels that cannot show this card.
    command: str = ""


@dataclass(frozen=True)
class Reply:
    """A neutral reply: plain text, markdown, or a card with buttons."""

    text: str
    title: str = "党员积分助手"
    markdown: bool = False
    buttons: tuple[Button, ...] = ()
    mention_sender: bool = False
    # Cards are tracked by this id so that a click can update the same card.
    card_id: str | None = None


def reply_from_notice(notice: Notice, *, mention_sender: bool = False) -> Reply:
    """A core notice (app.services.notices) as a chat reply."""
    return Reply(notice.text, title=notice.title, markdown=notice.markdown,
                 buttons=tuple(Button(b.label, b.action, dict(b.params), b.command)
                               for b in notice.buttons),
                 mention_sender=mention_sender, card_id=notice.card_id)


@dataclass(frozen=True)
class Notification:
    """A message to someone other than the asker (e.g. a leave request to the secretary)."""

    platform: str
    reply: Reply
    user_id: str | None = None
    chat_id: str | None = None


@dataclass
class Outcome:
    """What handling a message produced: the reply in the same chat and any notifications."""

    reply: Reply | None
    notifications: list[Notification] = field(default_factory=list)
    # A refused card click: the answer is for the clicker alone, the card itself stays as is.
    refused: bool = False


@dataclass(frozen=True)
class CardAction:
    """A click on a card button, from a verified platform callback."""

    platform: str
    user_id: str
    card_id: str
    action: str
    params: dict[str, str]
    # The platform's id of this click event, when it redelivers events (WeCom): seen twice,
    # the click is applied once.
    event_id: str = ""


Delivery = Callable[[], object]
"""What handling a message leaves to be sent: the platform calls that carry its answer."""
