"""/我的积分 and /排行 wording: months as people write them, and no rank where there is none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.config import Settings
from app.db import write_session
from app.domain.periods import month_key, month_label
from app.services import orgs
from app.services.ledger import Actor, record_entry, review_entry
from app.services.people import find_person
from bot.runtime import build_dispatcher
from tests.chat import conformance as suite
from tests.chat.drivers import DispatcherDriver


@pytest.fixture
def chat(db, db_url) -> tuple[DispatcherDriver, str, str]:
    """The conformance world through dispatch(), its branch group, and this month's label."""
    now = datetime.now(UTC)
    suite.seed_world(db, now)
    settings = Settings(_env_file=None, database_url=db_url)
    driver = DispatcherDriver(db, build_dispatcher(engine=db, settings=settings))
    with write_session(db) as s:
        group = driver.bind(orgs.find_by_path_or_name(s, suite.BRANCH))
    return driver, group, month_label(month_key(now, settings.tz))


def test_the_private_rank_names_the_month_in_words(chat):
    driver, group, label = chat
    said = driver.say(suite.MEMBER, "/我的积分", group=group)
    assert f"· {label}积分" in (said.reply or "")
    assert said.private[suite.MEMBER] == [
        f"{find_name(driver)}，您{label}的支部排名：第 1 名 / 共 12 人（仅您可见）"]


def test_the_board_heading_names_the_month_in_words(chat):
    driver, group, label = chat
    said = driver.say(suite.SECRETARY, "/排行", group=group)
    assert f"{suite.BRANCH} {label}积分榜（实时）" in (said.reply or "")


def test_a_vetoed_member_is_told_there_is_no_rank_and_gets_no_private_message(chat, db):
    driver, group, _ = chat
    with write_session(db) as s:
        member = find_person(session=s, key=suite.MEMBER)
        secretary = find_person(session=s, key=suite.SECRETARY)
        veto = record_entry(session=s, member_id=member.id, indicator_code="veto_law",
                            occurred_on=datetime.now(UTC).date(), reason="测试否决",
                            actor=Actor("test"))
        review_entry(session=s, entry_id=veto.id, approve=True,
                     actor=Actor(secretary.name, secretary.id))
    said = driver.say(suite.MEMBER, "/我的积分", group=group)
    assert "一票否决" in (said.reply or "") and "暂无支部排名" in (said.reply or "")
    assert "私信" not in (said.reply or "") and not said.private


def find_name(driver: DispatcherDriver) -> str:
    with write_session(driver.engine) as s:
        return find_person(session=s, key=suite.MEMBER).name


def test_the_year_board_ranks_the_branch_by_the_schemes_year_formula(chat):
    driver, group, label = chat
    year, month = label[:4], label[5:-1]
    said = driver.say(suite.SECRETARY, "/排行 本年", group=group)
    reply = said.reply or ""
    assert f"### {suite.BRANCH} {year}年度积分榜（截至{month}月）" in reply
    assert "前 10 名：" in reply
    # The member with points leads; the rest tie at 0, and a tie at the cut is shown whole.
    assert f"- 第 1 名 {find_name(driver)} " in reply and reply.count("- 第 2 名 ") == 11
    assert not said.private  # the secretary's own row is on the public board


def test_my_year_rank_goes_privately_in_a_group_and_inline_one_to_one(chat):
    driver, group, label = chat
    year = label[:4]
    in_group = driver.say(suite.MEMBER, "/我的积分 本年", group=group)
    reply = in_group.reply or ""
    assert f"{year}年积分" in reply and "排名已私信发给您" in reply
    assert in_group.private[suite.MEMBER] == [
        f"{find_name(driver)}，您{year}年度的支部排名：第 1 名 / 共 12 人（仅您可见）"]
    alone = driver.say(suite.MEMBER, "/我的积分 今年")
    assert "支部排名：第 1 名 / 共 12 人" in (alone.reply or "") and not alone.private


@pytest.mark.parametrize(("text", "answer"), [
    ("/排行 2099-01", "2099年1月还没到"),
    ("/我的积分 2099-01", "2099年1月还没到"),
    ("/我的积分 0000-01", "看不懂“0000-01”"),
    ("/排行 9999-12", "看不懂“9999-12”"),
])
def test_months_that_have_not_come_or_cannot_be_are_explained(chat, text, answer):
    driver, group, _ = chat
    assert answer in (driver.say(suite.MEMBER, text, group=group).reply or "")


@pytest.mark.parametrize("text", ["/批准 Q99999999999", "/驳回 S99999999999 不行",
                                  "/批准 Q0"])
def test_a_number_no_record_can_have_is_not_a_number_to_decide(chat, text):
    driver, group, _ = chat
    assert "看不懂编号" in (driver.say(suite.SECRETARY, text, group=group).reply or "")


def test_leave_for_a_number_no_activity_can_have_shows_the_format(chat):
    driver, group, _ = chat
    reply = driver.say(suite.MEMBER, "/请假 99999999999 事假 出差", group=group).reply or ""
    assert "请按格式发送" in reply
