"""Building the bot: the dispatcher with every command router."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from app.config import Settings
from bot.commands import ROUTERS, fallback
from bot.dispatcher import Dispatcher


def build_dispatcher(*, engine: Engine, settings: Settings) -> Dispatcher:
    """The one dispatcher every channel feeds."""
    return Dispatcher(engine=engine, settings=settings, routers=ROUTERS, fallback=fallback)
