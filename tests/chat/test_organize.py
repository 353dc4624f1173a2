"""/发起: a secretary plans an activity from the chat; members see it and can ask for leave."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import func, select

from app.config import Settings
from app.db import write_session
from app.models import Activity, Organization
from app.services.activities import ACTIVITY_KINDS
from bot.commands import ROUTERS, fallback
from bot.dispatcher import Dispatcher
from tests.chat import conformance as suite
from tests.chat.drivers import DispatcherDriver

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Shanghai
BASE = "https://dj.example.com"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)


@pytest.fixture
def chat(db, db_url):
    """The seeded world, with a dispatcher whose clock stands still at NOW."""
    suite.seed_world(db, NOW)
    settings = Settings(_env_file=None, database_url=db_url, public_base_url=BASE,
                        checkin_opens_before_min=15, checkin_closes_after_min=20)
    dispatcher = Dispatcher(engine=db, settings=settings, routers=ROUTERS, fallback=fallback,
                            clock=lambda: NOW)
    return DispatcherDriver(db, dispatcher)


def created_id(reply: str | None) -> int:
    assert reply is not None and "已发起活动" in reply, reply
    found = re.search(r"序号 (\d+)", reply)
    assert found is not None
    return int(found.group(1))


def activity(db, activity_id: int) -> tuple[Activity, str]:
    with write_session(db) as s:
        found = s.get(Activity, activity_id)
        assert found is not None
        org = s.get(Organization, found.organization_id)
        assert org is not None
        return found, org.name


def activities(db) -> int:
    with write_session(db) as s:
        return s.exec(select(func.count()).select_from(Activity)).one()


@pytest.mark.parametrize(("written", "starts"), [
    ("2026-11-28 14:30", local(2026, 11, 28, 14, 30)),
    ("2026-11-28T14:30", local(2026, 11, 28, 14, 30)),
    ("11-28 14:30", local(2026, 11, 28, 14, 30)),
    ("11月28日14:30", local(2026, 11, 28, 14, 30)),
    ("11月28日 14:30", local(2026, 11, 28, 14, 30)),
    ("明天14:30", local(2026, 11, 21, 14, 30)),
    ("后天 9:00", local(2026, 11, 22, 9, 0)),
    ("１１月２８日　１４：３０", local(2026, 11, 28, 14, 30)),
])
def test_a_secretary_plans_an_activity_in_any_usual_spelling(chat, db, written, starts):
    reply = chat.say(suite.SECRETARY, f"/发起 主题党日 {written} 三楼 会议室").reply
    activity_id = created_id(reply)
    planned, branch = activity(db, activity_id)
    assert planned.starts_at == starts and planned.ends_at == starts + timedelta(hours=2)
    assert branch == suite.BRANCH
    assert planned.kind == planned.title == "主题党日" and planned.place == "三楼 会议室"
    # The check-in window follows the configured defaults (15 min before, 20 after).
    assert planned.checkin_opens_at == starts - timedelta(minutes=15)
    assert planned.checkin_closes_at == planned.ends_at + timedelta(minutes=20)
    assert f"{BASE}/h5/activities/{activity_id}/screen" in reply
    assert f"{BASE}/h5/activities/{activity_id}\n" in reply
    assert f"/请假 {activity_id}" in reply and "三楼 会议室" in reply
    shown = starts.astimezone(TZ)
    assert f"{shown.month}月{shown.day}日 {shown:%H:%M}" in reply


def test_the_reply_shows_time_place_and_window(chat):
    reply = chat.say(suite.SECRETARY, "/發起 党课 11月28日 14:30").reply or ""
    assert "党课：11月28日 14:30–16:30" in reply
    assert "签到：11月28日 14:15–16:50" in reply
    assert "地点：未填写" in reply


def test_members_see_it_and_can_ask_for_leave(chat):
    activity_id = created_id(chat.say(suite.SECRETARY, "/发起 党课 明天 9:00 党员活动室").reply)
    listed = chat.say(suite.MEMBER, "/活动").reply or ""
    assert f"序号 {activity_id}：党课「党课」" in listed
    asked = chat.say(suite.MEMBER, f"/请假 {activity_id} 事假 出差在外")
    assert "已提交请假申请" in (asked.reply or "")
    assert [recipient for recipient, *_ in asked.cards] == [suite.SECRETARY]


def test_a_member_may_not(chat, db):
    before = activities(db)
    reply = chat.say(suite.MEMBER, "/发起 主题党日 明天 14:30").reply or ""
    assert "仅限" in reply and "支部书记" in reply
    assert activities(db) == before


@pytest.mark.parametrize("written", ["今天 9:00", "11-19 14:30", "昨天 14:30"])
def test_a_time_gone_by_is_refused(chat, db, written):
    before = activities(db)
    reply = chat.say(suite.SECRETARY, f"/发起 主题党日 {written}").reply or ""
    assert "已经过去" in reply
    assert activities(db) == before


def test_an_unknown_type_lists_the_types(chat, db):
    reply = chat.say(suite.SECRETARY, "/发起 开会 明天 14:30").reply or ""
    assert "没有“开会”这种活动类型" in reply
    assert all(kind in reply for kind in ACTIVITY_KINDS)
    assert activities(db) == 1


@pytest.mark.parametrize(("text", "words"), [
    ("/发起", "请按格式发送"),
    ("/发起 主题党日", "请写上活动时间"),
    ("/发起 主题党日 下周三 14:30", "看不懂时间"),
    ("/发起 主题党日 11月28日 三楼", "请在日期后写上开始时间"),
    ("/发起 主题党日 2月30日 9:00", "不存在"),
    ("/发起 主题党日 2028-11-28 14:30", "一年以后"),
])
def test_a_bad_time_gets_a_hint(chat, db, text, words):
    reply = chat.say(suite.SECRETARY, text).reply or ""
    assert words in reply, reply
    assert activities(db) == 1


def test_in_a_bound_group_the_activity_is_the_groups_branch(chat, db):
    with write_session(db) as s:
        production = s.exec(select(Organization).where(Organization.name == suite.BRANCH)).one()
    group = chat.bind(production)
    # Another branch's secretary cannot plan for this group's branch …
    refused = chat.say(suite.OTHER_SECRETARY, "/发起 支委会 明天 9:00", group=group).reply or ""
    assert "不能为“生产第一党支部”发起活动" in refused
    # … but in a 1:1 chat plans for the branch they run.
    own = created_id(chat.say(suite.OTHER_SECRETARY, "/发起 支委会 明天 9:00").reply)
    assert activity(db, own)[1] == "综合管理党支部"
    here = created_id(chat.say(suite.SECRETARY, "/发起 支委会 明天 9:00", group=group).reply)
    assert activity(db, here)[1] == suite.BRANCH


def test_help_offers_it_to_secretaries_only(chat):
    assert "/发起" in (chat.say(suite.SECRETARY, "/帮助").reply or "")
    assert "/发起" not in (chat.say(suite.MEMBER, "/帮助").reply or "")


def test_my_points_links_the_h5_page(chat):
    reply = chat.say(suite.MEMBER, "/我的积分").reply or ""
    assert reply.splitlines()[-1] == f"详情：{BASE}/h5/me?period=2026-11"
    last_month = chat.say(suite.MEMBER, "/我的积分 上月").reply or ""
    assert last_month.endswith("/h5/me?period=2026-10")
