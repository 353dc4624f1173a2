"""Dispatcher middleware: own messages, dedupe across restarts, errors become a friendly reply."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from app.config import Settings
from app.models import Activity
from bot.dispatcher import GENERIC_ERROR, OUT_OF_RANGE, Dispatcher, Router
from bot.runtime import build_dispatcher
from bot.types import ChatType, IncomingMessage
from tests.chat import conformance as suite
from tests.factories import Statements


def message(text: str, *, message_id: str = "m1", from_bot: bool = False,
            sender: str = suite.MEMBER) -> IncomingMessage:
    return IncomingMessage(platform="simulator", chat_id="single", chat_type=ChatType.SINGLE,
                           sender_userid=sender, text=text, message_id=message_id,
                           received_at=datetime.now(UTC), from_bot=from_bot)


def test_the_bots_own_messages_are_ignored(db, db_url):
    suite.seed_world(db, datetime.now(UTC))
    dispatcher = build_dispatcher(engine=db, settings=Settings(_env_file=None,
                                                              database_url=db_url))
    assert dispatcher.dispatch(message("/我的积分", from_bot=True)) is None


def test_dedupe_survives_a_restart(db, db_url):
    suite.seed_world(db, datetime.now(UTC))
    settings = Settings(_env_file=None, database_url=db_url)
    first = build_dispatcher(engine=db, settings=settings).dispatch(message("/帮助"))
    restarted = build_dispatcher(engine=db, settings=settings)
    assert first is not None and first.reply is not None
    assert restarted.dispatch(message("/帮助")) is None


def test_once_the_branch_board_is_current_my_points_costs_two_statements(db, db_url):
    suite.seed_world(db, datetime.now(UTC))
    dispatcher = build_dispatcher(engine=db, settings=Settings(_env_file=None,
                                                              database_url=db_url))
    dispatcher.dispatch(message("/我的积分", message_id="warm", sender=suite.SECRETARY))
    with Statements(db) as seen:
        outcome = dispatcher.dispatch(message("/我的积分", message_id="asked"))
    # The first-sight insert, which also reads the data version, and the sender with roles.
    assert seen.count == 2
    assert outcome is not None and outcome.reply is not None and "合计" in outcome.reply.text
    with Statements(db) as seen:
        assert dispatcher.dispatch(message("/我的积分", message_id="asked")) is None
    assert seen.count == 1  # a redelivery stops at the insert


def test_a_failing_command_gets_a_friendly_reply_and_a_log_line(db, db_url, caplog):
    suite.seed_world(db, datetime.now(UTC))
    router = Router()

    @router.command("爆炸", summary="测试")
    def explode(ctx):
        raise RuntimeError("boom")

    dispatcher = Dispatcher(engine=db, settings=Settings(_env_file=None, database_url=db_url),
                            routers=[router], fallback=lambda ctx: "?")
    with caplog.at_level(logging.ERROR):
        outcome = dispatcher.dispatch(message("/爆炸"))
    assert outcome is not None and outcome.reply.text == GENERIC_ERROR
    assert "command failed" in caplog.text and "boom" in caplog.text


def test_a_number_the_database_cannot_hold_gets_its_own_reply_and_the_message_still_counts(
        db, db_url, caplog):
    suite.seed_world(db, datetime.now(UTC))
    router = Router()

    @router.command("查活动", summary="测试")
    def look_up(ctx):
        ctx.session.get(Activity, 2**63)  # past PostgreSQL's integer and SQLite's binding
        return "?"

    dispatcher = Dispatcher(engine=db, settings=Settings(_env_file=None, database_url=db_url),
                            routers=[router], fallback=lambda ctx: "?")
    with caplog.at_level(logging.WARNING):
        outcome = dispatcher.dispatch(message("/查活动"))
    assert outcome is not None and outcome.reply.text == OUT_OF_RANGE
    assert "refused by the database" in caplog.text and "command failed" not in caplog.text
    assert dispatcher.dispatch(message("/查活动")) is None  # recorded: a redelivery is ignored
