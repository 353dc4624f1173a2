"""The conformance suite run through every channel driver available here."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import write_session
from app.main import create_app
from app.services import orgs
from bot.runtime import build_dispatcher
from tests.chat import conformance as suite
from tests.chat.drivers import DispatcherDriver, SimulatorDriver


@pytest.fixture(params=["dispatcher", "simulator"])
def world(request, db, db_url):
    """A seeded organisation and a driver for one channel."""
    ids = suite.seed_world(db, datetime.now(UTC))
    settings = Settings(_env_file=None, database_url=db_url, app_env="dev")
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
    if request.param == "dispatcher":
        driver = DispatcherDriver(db, build_dispatcher(engine=db, settings=settings))
        yield driver, ids, driver.bind(branch)
        return
    with TestClient(create_app(settings)) as client:
        driver = SimulatorDriver(db, client)
        yield driver, ids, driver.bind(branch)


def test_my_points(world):
    chat, _, group = world
    suite.check_my_points(chat, group)


def test_period_words(world):
    chat, _, _ = world
    suite.check_period_words(chat)


def test_board(world):
    chat, _, group = world
    suite.check_board(chat, group)


def test_leave_flow(world):
    chat, ids, group = world
    suite.check_leave_flow(chat, ids["activity"], group)


def test_leave_card(world, db):
    chat, ids, _ = world
    suite.check_leave_card(chat, db, ids["activity"])


def test_help_is_role_aware(world):
    chat, _, _ = world
    suite.check_help_is_role_aware(chat)


def test_unknown_and_strangers(world):
    chat, _, group = world
    suite.check_unknown_and_strangers(chat, group)


def test_group_binding(world, db):
    chat, _, _ = world
    suite.check_group_binding(chat, db)


def test_duplicates_answered_once(world):
    chat, _, group = world
    suite.check_duplicates_answered_once(chat, group)


def test_declaration_review(world):
    chat, ids, _ = world
    suite.check_declaration_review(chat, ids["declared"])
