"""Every chat command, fed odd arguments, answers with a specific reply, never the generic
error that means a command crashed.

The commands come from the dispatcher itself, so a command added later is covered too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from app.config import Settings
from app.db import write_session
from app.services import orgs
from bot.dispatcher import GENERIC_ERROR
from bot.runtime import build_dispatcher
from tests.chat import conformance as suite
from tests.chat.drivers import DispatcherDriver

ODD_ARGS = [
    "", "99999999999", "Q99999999999", "S99999999999", "Y99999999999", "Q0", "-1",
    "0000-01", "9999-12", "2099-01", "2026-13", "本年", "x" * 300, "出\x00差",
    "99999999999 事假 理由", "1 病假", "政治合格=99999999999 理由", "政治合格=NaN",
    "主题党日 13月40日25:99 会议室",
]


def test_no_command_crashes_on_odd_arguments(db, db_url, caplog):
    ids = suite.seed_world(db, datetime.now(UTC))
    dispatcher = build_dispatcher(engine=db, settings=Settings(_env_file=None,
                                                              database_url=db_url))
    driver = DispatcherDriver(db, dispatcher)
    with write_session(db) as s:
        group = driver.bind(orgs.find_by_path_or_name(s, suite.BRANCH))
    crashed = []
    with caplog.at_level(logging.ERROR):
        for command in dispatcher.commands:
            for args in [*ODD_ARGS, str(ids["activity"])]:
                for who in (suite.MEMBER, suite.SECRETARY):
                    text = f"/{command.name} {args}".strip()
                    reply = driver.say(who, text, group=group).reply or ""
                    if reply == GENERIC_ERROR:
                        crashed.append(f"{who}: {text[:60]}")
    assert len(dispatcher.commands) > 10  # the registry was read, not an empty list
    assert crashed == []
    assert "command failed" not in caplog.text
