"""The local chat simulator (APP_ENV=dev only): a browser chat that goes through dispatch()."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from app.deps import SessionDep
from app.models import ChatGroup, Person, Platform
from bot.delivery import SimulatorFeed
from bot.dispatcher import Dispatcher
from bot.types import CardAction, ChatType, IncomingMessage, Outcome

router = APIRouter(prefix="/dev/chat", tags=["simulator"])


def get_dispatcher(request: Request) -> Dispatcher:
    """The application's dispatcher."""
    return request.app.state.dispatcher


def get_feed(request: Request) -> SimulatorFeed:
    """The simulator's outbox."""
    return request.app.state.simulator_feed


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
FeedDep = Annotated[SimulatorFeed, Depends(get_feed)]


class SimMessage(BaseModel):
    """A message typed into the simulator by a chosen demo person."""

    person_id: int
    text: str = Field(min_length=1, max_length=2000)
    chat_id: str | None = Field(default=None, description="group chat id; empty for a 1:1 chat")


class SimClick(BaseModel):
    """A click on a card button in the simulator."""

    person_id: int
    card_id: str
    action: str
    params: dict[str, str] = {}


def _sender(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None or not person.dingtalk_userid:
        raise HTTPException(404, "找不到该演示人员")
    return person


def _outcome_json(outcome: Outcome | None) -> dict[str, object]:
    if outcome is None:
        return {"reply": None, "notifications": []}
    return {"reply": asdict(outcome.reply) if outcome.reply else None,
            "notifications": [asdict(n) for n in outcome.notifications]}


@router.post("/messages")
def post_message(body: SimMessage, session: SessionDep, dispatcher: DispatcherDep,
                 feed: FeedDep) -> dict[str, object]:
    """Send a message as a demo person and get the bot's reply (for the page and scripts)."""
    person = _sender(session, body.person_id)
    group = None
    if body.chat_id:
        group = session.exec(select(ChatGroup).where(ChatGroup.platform == Platform.SIMULATOR,
                                                     ChatGroup.chat_id == body.chat_id)).first()
    message = IncomingMessage(
        platform=Platform.SIMULATOR, chat_id=body.chat_id or f"single-{person.id}",
        chat_type=ChatType.GROUP if body.chat_id else ChatType.SINGLE,
        sender_userid=person.dingtalk_userid, text=body.text,
        message_id=uuid.uuid4().hex, received_at=datetime.now(UTC),
        chat_title=group.name if group else "", sender_name=person.name,
    )
    outcome = dispatcher.dispatch(message)
    if outcome is not None:
        feed.record(outcome)
    return _outcome_json(outcome)


@router.post("/cards/click")
def click_card(body: SimClick, session: SessionDep, dispatcher: DispatcherDep,
               feed: FeedDep) -> dict[str, object]:
    """Click a card button as a demo person."""
    person = _sender(session, body.person_id)
    outcome = dispatcher.card_action(CardAction(Platform.SIMULATOR, person.dingtalk_userid or "",
                                                body.card_id, body.action, body.params))
    feed.record(outcome)
    return _outcome_json(outcome)


@router.get("/feed")
def read_feed(feed: FeedDep, since: int = 0) -> dict[str, object]:
    """What the bot posted to groups and people since position `since`."""
    position, posts = feed.since(since)
    return {"next": position, "posts": [asdict(p) for p in posts]}


@router.get("/people")
def people(session: SessionDep) -> dict[str, object]:
    """Demo people and simulator groups to pick from."""
    persons = session.exec(select(Person).where(col(Person.dingtalk_userid).is_not(None))
                           .order_by(col(Person.id))).all()
    groups = session.exec(select(ChatGroup).where(ChatGroup.platform == Platform.SIMULATOR)
                          .order_by(col(ChatGroup.id))).all()
    return {"people": [{"id": p.id, "name": p.name, "userid": p.dingtalk_userid}
                       for p in persons],
            "groups": [{"chat_id": g.chat_id, "name": g.name} for g in groups]}


@router.get("", response_class=HTMLResponse)
def page() -> str:
    """The simulator page."""
    return (resources.files("bot") / "pages" / "simulator.html").read_text(encoding="utf-8")
