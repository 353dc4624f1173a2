"""Conformance drivers for DingTalk: signed HTTP callbacks, and Stream frames, via the fake."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.db import write_session
from app.models import ChatGroup, Organization, Platform
from bot.fakes.dingtalk import FakeDingTalk, SentMessage, signed_callback_headers
from bot.outbox_worker import OutboxWorker
from tests.chat.conformance import Said

CLIENT_ID = "dingconformance"
SECRET = "conformance-secret"
TEMPLATE = "leave-approval.schema"
# The approval card template's buttons (docs/dingtalk.md): action ids and the param they carry.
TEMPLATE_BUTTONS = (("批准", "leave.approve"), ("驳回", "leave.reject"))


class _DingTalkGroups:
    def __init__(self, engine: Engine, fake: FakeDingTalk, worker: OutboxWorker) -> None:
        self.engine = engine
        self.fake = fake
        # The app's outbox worker: leave cards and verdicts are posted through the outbox.
        self.worker = worker
        self._n = 0

    def bind(self, branch: Organization) -> str:
        """A DingTalk group (the robot is in it) bound to the branch."""
        chat_id = f"cid-{branch.id}"
        self.fake.add_group(chat_id)
        with write_session(self.engine) as s:
            s.add(ChatGroup(platform=Platform.DINGTALK, chat_id=chat_id, name="支部群",
                            organization_id=branch.id))
        return chat_id

    def unbound_group(self) -> str:
        """A DingTalk group nobody bound."""
        self._n += 1
        chat_id = f"cid-unbound-{self._n}"
        self.fake.add_group(chat_id)
        return chat_id

    def _body(self, userid: str, text: str, group: str | None,
              message_id: str | None) -> dict[str, Any]:
        extra = {"msgId": message_id} if message_id else {}
        return self.fake.bot_message_body(
            text=text, conversation_id=group or f"single-{userid}",
            conversation_type="2" if group else "1", sender_staff_id=userid, **extra)

    def _collect(self, sent_before: int, cards_before: set[str]) -> Said:
        self.worker.run_once()
        new: list[SentMessage] = self.fake.sent[sent_before:]
        replies = [m.text for m in new if m.kind in ("session", "group")]
        said = Said(replies[0] if replies else None)
        for message in new:
            if message.kind == "single":
                for uid in message.target:
                    said.private.setdefault(uid, []).append(message.text)
        for card_id, card in self.fake.cards.items():
            if card_id in cards_before:
                continue
            recipient = card.space_id.rsplit(".", 1)[-1]
            params = {"leave_id": card.card_param_map["leave_id"]}
            said.cards.append((recipient, card_id,
                               [(label, action, params) for label, action in TEMPLATE_BUTTONS]))
        return said

    def click(self, userid: str, card_id: str, action: str, params: dict[str, str]) -> str:
        """Click through the fake's Stream gateway; the card text the clicker then sees."""
        response = self.fake.click_card(card_id, userid, action, params) or {}
        self.worker.run_once()
        private = response.get("privateData", {}).get(userid, {})
        shown = private or response.get("cardData", {})
        return shown.get("cardParamMap", {}).get("status", "")


class DingTalkHttpDriver(_DingTalkGroups):
    """Robot messages as signed HTTP-mode callbacks to /bot/dingtalk/callback."""

    def __init__(self, engine: Engine, fake: FakeDingTalk, client: TestClient) -> None:
        super().__init__(engine, fake, client.app.state.outbox_worker)  # type: ignore[attr-defined]
        self.client = client

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """POST a signed callback, then wait for the handler the endpoint queued."""
        sent_before, cards_before = len(self.fake.sent), set(self.fake.cards)
        body = self._body(userid, text, group, message_id)
        response = self.client.post(
            "/bot/dingtalk/callback", content=json.dumps(body, ensure_ascii=False).encode(),
            headers=signed_callback_headers(SECRET, int(time.time() * 1000)))
        assert response.status_code == 200, response.text
        self.client.app.state.chat_handlers.join()  # type: ignore[attr-defined]
        return self._collect(sent_before, cards_before)


class DingTalkStreamDriver(_DingTalkGroups):
    """Robot messages as Stream CALLBACK frames through the fake gateway."""

    def __init__(self, engine: Engine, fake: FakeDingTalk, worker: OutboxWorker) -> None:
        super().__init__(engine, fake, worker)
        self.handled: dict[str, threading.Event] = {}

    def wrap(self, handler: Any) -> Any:
        """Wrap the bot-message handler so a test can wait until a message was processed."""
        def handle(payload: dict[str, Any]) -> None:
            try:
                handler(payload)
            finally:
                self.handled.setdefault(payload.get("msgId", ""), threading.Event()).set()
        return handle

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """Push a frame, wait for its ack and for the handler to finish."""
        sent_before, cards_before = len(self.fake.sent), set(self.fake.cards)
        body = self._body(userid, text, group, message_id)
        done = threading.Event()
        self.handled[body["msgId"]] = done
        frame = self.fake.push_bot_message(body)
        self.fake.wait_acked(frame)
        assert done.wait(10), "the bot message handler did not finish"
        return self._collect(sent_before, cards_before)
