"""One dispatcher for every channel: dedupe, sender resolution, command routing, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from sqlmodel import Session

from app.config import Settings
from app.db import write_session
from app.domain.refusals import Refused
from app.domain.vocab import Role
from app.models import Person
from app.services import chat_groups, outbox
from app.services.access import person_for, sender
from app.services.chat_groups import GroupBinding
from bot.parsing import split_command
from bot.types import CardAction, ChatType, IncomingMessage, Outcome, Reply

log = logging.getLogger(__name__)

GENERIC_ERROR = "抱歉，处理您的消息时出了点问题，请稍后再试；如果一直这样，请联系管理员。"
OUT_OF_RANGE = "您输入的内容超出了允许的范围（数字太大或文字太长），请检查后再发送。"
# A value the database cannot hold: PostgreSQL refuses it (DataError), SQLite's driver cannot
# even bind a number past 64 bits (OverflowError). Either way the person typed it, not a bug.
OUT_OF_RANGE_ERRORS = (DataError, OverflowError)
UNBOUND_PERSON = ("您的账号还没有登记在党员名册中，暂时不能使用积分助手。"
                  "请联系本单位党建管理员，把您的账号加入名册后再试。")
UNBOUND_GROUP_HINT = "（本群尚未绑定支部。支部书记或管理员可在本群发送：/绑定支部 支部名称）"


class UserError(Exception):
    """A refusal to show the user as is (Chinese), rather than a failure."""


# Refusals whose messages are written for users; anything else is a failure and gets logged.
USER_ERRORS = (UserError, Refused)


@dataclass
class Context:
    """What a command handler gets: the message, who sent it, and a session to work in."""

    session: Session
    message: IncomingMessage
    person: Person
    roles: set[Role]
    group: GroupBinding | None
    args: list[str]
    settings: Settings
    now: datetime
    commands: Sequence[Command] = ()

    @property
    def in_group(self) -> bool:
        """The message was written in a group chat."""
        return self.message.chat_type is ChatType.GROUP


Handler = Callable[[Context], Outcome | Reply | str]
# A card button's handler: (session, clicker, the click, now, settings); it authorises the clicker.
CardHandler = Callable[[Session, Person, CardAction, datetime, Settings], Outcome]


@dataclass(frozen=True)
class Command:
    """A chat command: its names, who may use it, and its handler."""

    name: str
    summary: str
    usage: str
    handler: Handler
    aliases: tuple[str, ...] = ()
    roles: frozenset[Role] | None = None

    def allowed(self, roles: set[Role]) -> bool:
        """Whether someone with `roles` may use the command."""
        return self.roles is None or bool(self.roles & roles)


@dataclass
class Router:
    """Commands of one feature module, registered with a decorator."""

    commands: list[Command] = field(default_factory=list)
    card_actions: dict[str, CardHandler] = field(default_factory=dict)

    def command(
        self, name: str, *, summary: str, usage: str | None = None,
        aliases: Iterable[str] = (), roles: Iterable[Role] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of `/name`."""
        def register(handler: Handler) -> Handler:
            self.commands.append(Command(name, summary, usage or f"/{name}", handler,
                                         tuple(aliases),
                                         frozenset(roles) if roles is not None else None))
            return handler
        return register

    def card_action(self, action: str) -> Callable[[CardHandler], CardHandler]:
        """Register the decorated function as the handler of a card button action."""
        def register(handler: CardHandler) -> CardHandler:
            self.card_actions[action] = handler
            return handler
        return register


class Dispatcher:
    """Turns an IncomingMessage into an Outcome; every adapter calls the same `dispatch()`."""

    def __init__(
        self, *, engine: Engine, settings: Settings, routers: Iterable[Router],
        fallback: Handler, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        # Called after a message's transaction committed outbox posts (wakes the worker).
        self.on_queued = on_queued
        self.settings = settings
        self.clock = clock
        self.fallback = fallback
        self.commands: list[Command] = []
        self.card_actions: dict[str, CardHandler] = {}
        for router in routers:
            self.commands.extend(router.commands)
            self.card_actions.update(router.card_actions)
        self._by_name = {n: c for c in self.commands for n in (c.name, *c.aliases)}

    def dispatch(self, message: IncomingMessage) -> Outcome | None:
        """Handle one message; None when there is nothing to answer (own or repeated message)."""
        if message.from_bot:
            return None
        now = self.clock()
        with write_session(self.engine) as session:
            if not chat_groups.first_sight(session=session, platform=message.platform,
                                           message_id=message.message_id, now=now):
                log.info("duplicate %s message %s ignored", message.platform, message.message_id)
                return None
            outcome = self._handle(session, message, now)
            queued = outbox.queued_in(session)
        if queued:
            self.on_queued()
        return outcome

    def _handle(self, session: Session, message: IncomingMessage, now: datetime) -> Outcome:
        group = (chat_groups.binding_for(session=session, platform=message.platform,
                                         chat_id=message.chat_id)
                 if message.chat_type is ChatType.GROUP else None)
        known = sender(session=session, platform=message.platform,
                       userid=message.sender_userid)
        if known is None:
            log.info("unknown sender on %s in chat %s", message.platform, message.chat_id)
            return Outcome(Reply(UNBOUND_PERSON, mention_sender=True))
        person, roles = known
        name, args = split_command(message.text)
        command = self._by_name.get(name)
        ctx = Context(session, message, person, roles, group, args, self.settings, now,
                      self.commands)
        handler = self.fallback if command is None else command.handler
        if command is not None and not command.allowed(roles):
            outcome = Outcome(Reply(f"/{command.name} 仅限{_role_names(command.roles)}使用。"
                                    "发送 /帮助 查看您可以使用的命令。"))
        else:
            outcome = self._run(session, handler, ctx)
        if message.chat_type is ChatType.GROUP and group is None and outcome.reply is not None:
            reply = outcome.reply
            outcome.reply = Reply(f"{reply.text}\n\n{UNBOUND_GROUP_HINT}", reply.title,
                                  reply.markdown, reply.buttons, reply.mention_sender,
                                  reply.card_id)
        return outcome

    def _run(self, session: Session, handler: Handler, ctx: Context) -> Outcome:
        try:
            with session.begin_nested():
                result = handler(ctx)
        except USER_ERRORS as exc:
            return Outcome(Reply(str(exc), mention_sender=True))
        except OUT_OF_RANGE_ERRORS as exc:
            log.warning("command refused by the database for %s message %s: %s",
                        ctx.message.platform, ctx.message.message_id, type(exc).__name__)
            return Outcome(Reply(OUT_OF_RANGE, mention_sender=True))
        except Exception:
            log.exception("command failed for %s message %s", ctx.message.platform,
                          ctx.message.message_id)
            return Outcome(Reply(GENERIC_ERROR, mention_sender=True))
        if isinstance(result, str):
            return Outcome(Reply(result, mention_sender=True))
        if isinstance(result, Reply):
            return Outcome(result)
        return result

    def card_action(self, action: CardAction) -> Outcome:
        """Handle a verified card click; the clicker is authorised by the handler."""
        now = self.clock()
        with write_session(self.engine) as session:
            if action.event_id and not chat_groups.first_sight(
                    session=session, platform=action.platform, message_id=action.event_id,
                    now=now):
                log.info("duplicate %s card event %s ignored", action.platform, action.event_id)
                return Outcome(None)
            person = person_for(session=session, platform=action.platform, userid=action.user_id)
            handler = self.card_actions.get(action.action)
            if person is None or handler is None:
                return Outcome(Reply("无法处理这次操作：账号未登记或按钮已失效。"), refused=True)
            try:
                with session.begin_nested():
                    outcome = handler(session, person, action, now, self.settings)
            except USER_ERRORS as exc:
                return Outcome(Reply(str(exc)), refused=True)
            queued = outbox.queued_in(session)
        if queued:
            self.on_queued()
        return outcome


def _role_names(roles: frozenset[Role] | None) -> str:
    return "、".join(r.label for r in sorted(roles or (), key=lambda r: r.value))
