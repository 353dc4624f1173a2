"""Chat drivers for the conformance suite: straight into dispatch(), and through the simulator."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.db import write_session
from app.models import ChatGroup, Organization, Platform
from app.services.people import find_person
from bot.dispatcher import Dispatcher
from bot.outbox_worker import OutboxWorker
from bot.types import CardAction, ChatType, IncomingMessage, Notification, Outcome
from tests.chat.conformance import Said

_unbound = itertools.count(1)


def said_from_parts(reply: str | None, notes: list[Notification]) -> Said:
    """Sort a reply and notifications into the reply, private messages and cards, by userid."""
    said = Said(reply)
    for note in notes:
        if note.reply.buttons:
            buttons = [(b.label, b.action, dict(b.params)) for b in note.reply.buttons]
            said.cards.append((note.user_id or "", note.reply.card_id or "", buttons))
        else:
            said.private.setdefault(note.user_id or "", []).append(note.reply.text)
    return said


class SimulatorGroups:
    """Group bindings on the simulator platform."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def bind(self, branch: Organization) -> str:
        """The demo seed's simulator group of the branch."""
        return f"sim-{branch.id}"

    def unbound_group(self) -> str:
        """A fresh group id nobody bound."""
        return f"sim-unbound-{next(_unbound)}"

    def bind_existing(self, chat_id: str, branch: Organization) -> None:
        """Bind a chat id to a branch directly."""
        with write_session(self.engine) as s:
            s.add(ChatGroup(platform=Platform.SIMULATOR, chat_id=chat_id, name="测试群",
                            organization_id=branch.id))


class DispatcherDriver(SimulatorGroups):
    """Calls dispatch() directly with simulator messages; delivers the outbox after each."""

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        super().__init__(engine)
        self.dispatcher = dispatcher
        self.delivered: list[Notification] = []
        capture = self.delivered.append
        self.worker = OutboxWorker(engine=engine, senders={
            Platform.DINGTALK.value: capture, Platform.WECOM.value: capture,
            Platform.SIMULATOR.value: capture})

    def _with_posts(self, outcome: Outcome | None) -> Said:
        self.delivered.clear()
        self.worker.run_once()
        if outcome is None:
            return said_from_parts(None, self.delivered)
        reply = outcome.reply.text if outcome.reply else None
        return said_from_parts(reply, [*outcome.notifications, *self.delivered])

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """Dispatch one message."""
        message = IncomingMessage(
            platform=Platform.SIMULATOR, chat_id=group or f"single-{userid}",
            chat_type=ChatType.GROUP if group else ChatType.SINGLE, sender_userid=userid,
            text=text, message_id=message_id or uuid.uuid4().hex, received_at=datetime.now(UTC))
        return self._with_posts(self.dispatcher.dispatch(message))

    def click(self, userid: str, card_id: str, action: str, params: dict[str, str]) -> str:
        """Dispatch a card click."""
        outcome = self.dispatcher.card_action(
            CardAction(Platform.SIMULATOR, userid, card_id, action, params))
        self._with_posts(None)
        return outcome.reply.text if outcome.reply else ""


class SimulatorDriver(SimulatorGroups):
    """Goes through the simulator's HTTP API, as the browser page does."""

    def __init__(self, engine: Engine, client: TestClient) -> None:
        super().__init__(engine)
        self.client = client

    def _person_id(self, userid: str) -> int:
        with write_session(self.engine) as s:
            person = find_person(session=s, key=userid)
            return person.id if person else 0

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """POST /dev/chat/messages (the simulator mints its own message ids)."""
        person_id = self._person_id(userid)
        if person_id == 0:
            return Said("您的账号还没有登记在党员名册中（模拟器只能选名册中的人）")
        if message_id is not None:
            # The simulator has no redelivery; emulate it by replaying through dispatch().
            dispatcher = self.client.app.state.dispatcher  # type: ignore[attr-defined]
            return DispatcherDriver(self.engine, dispatcher).say(
                userid, text, group=group, message_id=message_id)
        start = self._feed_position()
        response = self.client.post("/dev/chat/messages",
                                    json={"person_id": person_id, "text": text, "chat_id": group})
        assert response.status_code == 200, response.text
        reply = response.json()["reply"]
        return self._said_feed(reply["text"] if reply else None, start)

    def click(self, userid: str, card_id: str, action: str, params: dict[str, str]) -> str:
        """POST /dev/chat/cards/click."""
        start = self._feed_position()
        response = self.client.post("/dev/chat/cards/click", json={
            "person_id": self._person_id(userid), "card_id": card_id, "action": action,
            "params": params})
        assert response.status_code == 200, response.text
        self._said_feed(None, start)
        reply = response.json()["reply"]
        return reply["text"] if reply else ""

    def _feed_position(self) -> int:
        return int(self.client.get("/dev/chat/feed", params={"since": 10**9}).json()["next"])

    def _said_feed(self, reply: str | None, start: int) -> Said:
        """The reply, and what the feed shows since `start` once the outbox was delivered."""
        self.client.app.state.outbox_worker.run_once()  # type: ignore[attr-defined]
        posts = self.client.get("/dev/chat/feed", params={"since": start}).json()["posts"]
        said = Said(reply)
        for post in posts:
            sent = post["reply"]
            if sent["buttons"]:
                buttons = [(b["label"], b["action"], b["params"]) for b in sent["buttons"]]
                said.cards.append((post["user_id"] or "", sent["card_id"] or "", buttons))
            elif post["user_id"]:
                said.private.setdefault(post["user_id"], []).append(sent["text"])
        return said
