"""Conformance drivers for WeCom, through the fake WeCom: the AI bot's callback and its long
connection for group (and 1:1) messages, and the app's callback for 1:1 messages; approval
cards are app template cards in every case, clicked through the app callback."""

from __future__ import annotations

import threading
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from app.db import write_session
from app.models import ChatGroup, Organization, Person, Platform
from bot.fakes.wecom import FakeWeCom, WeComSent
from bot.outbox_worker import OutboxWorker
from bot.wecom.adapter import card_id_of
from tests.chat.conformance import Said

CORP_ID = "wwconformance0001"
AGENT_ID = 1000002
SECRET = "wecom-app-secret"
TOKEN = "wecomAppToken"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
AIBOT_ID = "aibot-conformance"
AIBOT_SECRET = "aibot-secret"
AIBOT_TOKEN = "aibotToken"
AIBOT_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
REPLY_KINDS = ("response_url", "aibot_respond")


def fake_options() -> dict[str, Any]:
    """The fake's constructor arguments matching `settings_update`."""
    return {"corp_id": CORP_ID, "agent_id": AGENT_ID, "secret": SECRET, "token": TOKEN,
            "encoding_aes_key": AES_KEY, "aibot_id": AIBOT_ID, "aibot_secret": AIBOT_SECRET,
            "aibot_token": AIBOT_TOKEN, "aibot_encoding_aes_key": AIBOT_AES_KEY}


def settings_update(fake: FakeWeCom) -> dict[str, Any]:
    """Settings pointing the app at the fake WeCom."""
    return {"wecom_corp_id": CORP_ID, "wecom_agent_id": str(AGENT_ID),
            "wecom_secret": SecretStr(SECRET), "wecom_token": SecretStr(TOKEN),
            "wecom_encoding_aes_key": SecretStr(AES_KEY), "wecom_aibot_id": AIBOT_ID,
            "wecom_aibot_secret": SecretStr(AIBOT_SECRET),
            "wecom_aibot_token": SecretStr(AIBOT_TOKEN),
            "wecom_aibot_encoding_aes_key": SecretStr(AIBOT_AES_KEY),
            "wecom_api_base": fake.base_url, "wecom_open_base": fake.base_url,
            "wecom_ws_url": fake.ws_url}


def move_people_to_wecom(engine: Engine, fake: FakeWeCom) -> None:
    """The demo organisation, on WeCom: everyone keeps their userid, now a WeCom one."""
    with write_session(engine) as s:
        for person in s.exec(select(Person).where(col(Person.dingtalk_userid).is_not(None))):
            person.wecom_userid, person.dingtalk_userid = person.dingtalk_userid, None
            fake.add_user(person.wecom_userid or "")


class _WeComChat:
    """Groups, the outbox, and reading what the bot said from the fake's records."""

    def __init__(self, engine: Engine, fake: FakeWeCom, client: TestClient,
                 worker: OutboxWorker) -> None:
        self.engine = engine
        self.fake = fake
        self.client = client
        self.worker = worker
        self._n = 0

    def bind(self, branch: Organization) -> str:
        """A WeCom group with the AI bot in it, bound to the branch."""
        chat_id = f"wrgroup{branch.id}"
        with write_session(self.engine) as s:
            s.add(ChatGroup(platform=Platform.WECOM, chat_id=chat_id, name="支部群",
                            organization_id=branch.id))
        return chat_id

    def unbound_group(self) -> str:
        """A WeCom group nobody bound."""
        self._n += 1
        return f"wrunbound{self._n}"

    def _aibot_callback(self, userid: str, text: str, group: str | None,
                        message_id: str | None) -> None:
        query, body = self.fake.aibot_text_request(from_user=userid, content=text,
                                                   chat_id=group, msg_id=message_id)
        response = self.client.post("/bot/wecom/aibot/callback", params=query, content=body)
        assert response.status_code == 200, response.text
        self.client.app.state.chat_handlers.join()  # type: ignore[attr-defined]

    def _app_callback(self, query: dict[str, str], body: bytes) -> None:
        response = self.client.post("/bot/wecom/callback", params=query, content=body)
        assert response.status_code == 200, response.text
        self.client.app.state.chat_handlers.join()  # type: ignore[attr-defined]

    def _collect(self, asker: str, sent_before: int, cards_before: set[str],
                 *, reply_in_app: bool = False) -> Said:
        self.worker.run_once()
        new: list[WeComSent] = self.fake.sent[sent_before:]
        replies = [m for m in new if m.kind in REPLY_KINDS]
        app = [m for m in new if m.kind == "app" and m.msgtype != "template_card"]
        if reply_in_app:
            replies = [m for m in app if m.target == asker][:1]
        said = Said(replies[0].text if replies else None)
        for message in app:
            if message in replies:
                continue
            for userid in message.target.split("|"):
                said.private.setdefault(userid, []).append(message.text)
        for task_id, card in self.fake.cards.items():
            if task_id in cards_before:
                continue
            buttons = []
            for button in card.card["button_list"]:
                action, _, query = button["key"].partition("|")
                buttons.append((button["text"], action, dict(parse_qsl(query))))
            said.cards.append((card.touser, card_id_of(task_id), buttons))
        return said

    def click(self, userid: str, card_id: str, action: str, params: dict[str, str]) -> str:
        """Click through the app callback; the new button text, or what the clicker was told."""
        task_id = next(t for t in self.fake.cards if card_id_of(t) == card_id)
        updates, sent_before = self.fake.cards[task_id].updates, len(self.fake.sent)
        query, body = self.fake.click_card(task_id=task_id, userid=userid,
                                           key=f"{action}|{urlencode(params)}")
        self._app_callback(query, body)
        self.worker.run_once()
        card = self.fake.cards[task_id]
        if card.updates > updates:
            return card.replaced_button or ""
        told = [m.text for m in self.fake.sent[sent_before:]
                if m.kind == "app" and m.target == userid]
        return told[-1] if told else ""


class WeComAibotCallbackDriver(_WeComChat):
    """Every message through the AI bot's JSON callback; replies go to its response_url."""

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """POST an encrypted callback; TestClient runs the background reply before returning."""
        sent_before, cards_before = len(self.fake.sent), set(self.fake.cards)
        self._aibot_callback(userid, text, group, message_id)
        return self._collect(userid, sent_before, cards_before)


class WeComAppDriver(_WeComChat):
    """1:1 messages to the app through its XML callback (an app never hears groups, so group
    messages go through the AI bot, as in a real deployment)."""

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """POST an encrypted app callback (1:1) or an AI-bot callback (group)."""
        sent_before, cards_before = len(self.fake.sent), set(self.fake.cards)
        if group is not None:
            self._aibot_callback(userid, text, group, message_id)
            return self._collect(userid, sent_before, cards_before)
        query, body = self.fake.app_text_request(from_user=userid, content=text,
                                                 msg_id=message_id)
        self._app_callback(query, body)
        return self._collect(userid, sent_before, cards_before, reply_in_app=True)


class WeComAibotSocketDriver(_WeComChat):
    """Every message as an `aibot_msg_callback` frame over the long connection."""

    def __init__(self, engine: Engine, fake: FakeWeCom, client: TestClient,
                 worker: OutboxWorker) -> None:
        super().__init__(engine, fake, client, worker)
        self.handled: dict[str, threading.Event] = {}

    def wrap(self, handler: Any) -> Any:
        """Wrap the message handler so a test can wait until a message was processed."""
        def handle(req_id: str, body: dict[str, Any]) -> None:
            try:
                handler(req_id, body)
            finally:
                self.handled.setdefault(str(body.get("msgid", "")), threading.Event()).set()
        return handle

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """Push a frame and wait for the handler to finish (its reply is acked by then)."""
        sent_before, cards_before = len(self.fake.sent), set(self.fake.cards)
        msg_id = message_id or uuid.uuid4().hex
        done = threading.Event()
        self.handled[msg_id] = done
        self.fake.push_aibot_message(from_user=userid, content=text, chat_id=group,
                                     msg_id=msg_id)
        assert done.wait(10), "the AI bot message handler did not finish"
        return self._collect(userid, sent_before, cards_before)
