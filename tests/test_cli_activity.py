"""`partypoints activity`: plan, list, close, make attendance final, and the check-in code."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from app.cli import cli
from app.db import utcnow, write_session
from app.domain.checkin import read_token, window_index
from app.links import checkin_url
from app.models import (
    Activity,
    ActivityBranch,
    ActivityStatus,
    AuditLog,
    LeaveKind,
    LeaveRequest,
    LeaveStatus,
    LedgerEntry,
)
from app.services.checkin import mark_present
from app.services.people import find_person

runner = CliRunner()
BRANCH = "生产第一党支部"
SECRETARY = "demo-dt-001"
MEMBERS = ("demo-dt-005", "demo-dt-006")


def run(*args: str):
    return runner.invoke(cli, list(args))


@pytest.fixture
def demo(db, settings_env):
    """The demo organisation with its scheme (and its own six activities)."""
    assert run("demo", "seed").exit_code == 0
    return db


def local(settings, moment: datetime) -> str:
    return f"{moment.astimezone(settings.tz):%Y-%m-%d %H:%M}"


def created(result) -> int:
    assert result.exit_code == 0, result.output
    found = re.search(r"已创建活动 序号 (\d+)", result.output)
    assert found is not None, result.output
    return int(found.group(1))


def count(db, model) -> int:
    with write_session(db) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def one_line_error(result, words: str) -> None:
    assert result.exit_code == 1, result.output
    assert words in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_create_then_list(demo, settings_env):
    day = utcnow().astimezone(settings_env.tz).date() + timedelta(days=2)
    activity_id = created(run(
        "activity", "create", "--branch", f"示范集团党委/{BRANCH}", "--kind", "主题党日",
        "--title", "迎新座谈", "--start", f"{day:%Y-%m-%d} 14:30", "--end", "17:00",
        "--place", "三楼会议室", "--also-branch", "综合管理党支部"))
    with write_session(demo) as s:
        activity = s.get(Activity, activity_id)
        assert activity is not None
        # Local times in BUSINESS_TZ; a bare end time is on the start's day.
        start = datetime.combine(day, time(14, 30), tzinfo=settings_env.tz)
        assert activity.starts_at == start
        assert activity.ends_at == start + timedelta(hours=2, minutes=30)
        assert activity.created_by_id is None  # made by the system
        branches = s.exec(select(ActivityBranch).where(
            ActivityBranch.activity_id == activity_id)).all()
        assert len(branches) == 2
    listed = run("activity", "list", "--branch", BRANCH)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if f"序号 {activity_id} " in line)
    assert "迎新座谈" in row and "三楼会议室" in row and "未开始" in row and "签到 0/24" in row
    assert f"序号 {activity_id} " not in run("activity", "list", "--branch",
                                             "市场营销党支部").output
    # The demo's six are all still to be made final; --all lists the same here.
    assert len(run("activity", "list").output.splitlines()) == 7
    assert len(run("activity", "list", "--all").output.splitlines()) == 7


def test_create_prints_the_links(demo, settings_env):
    result = run("activity", "create", "--branch", BRANCH, "--kind", "党课",
                 "--start", "明天 9:00")
    activity_id = created(result)
    base = settings_env.public_base_url
    assert f"签到大屏：{base}/h5/activities/{activity_id}/screen" in result.output
    assert f"活动详情：{base}/h5/activities/{activity_id}\n" in result.output
    assert "党课「党课」" in result.output  # the title defaults to the kind


@pytest.mark.parametrize(("args", "words"), [
    (("--branch", "不存在的支部", "--kind", "党课", "--start", "明天 9:00"), "找不到支部"),
    (("--branch", "示范集团党委", "--kind", "党课", "--start", "明天 9:00"), "不是党支部"),
    (("--branch", BRANCH, "--also-branch", "无此支部", "--kind", "党课", "--start", "明天 9:00"),
     "找不到支部“无此支部”"),
    (("--branch", BRANCH, "--kind", "开会", "--start", "明天 9:00"), "活动类型应为"),
    (("--branch", BRANCH, "--kind", "党课", "--start", "下周三"), "看不懂时间"),
    (("--branch", BRANCH, "--kind", "党课", "--start", "2020-01-01 9:00"), "--allow-past"),
    (("--branch", BRANCH, "--kind", "党课", "--start", "明天 9:00", "--end", "8:00"),
     "结束时间必须晚于开始时间"),
    (("--branch", BRANCH, "--kind", "党课", "--start", "明天 9:00", "--end", "今天 10:00"),
     "结束时间必须晚于开始时间"),
])
def test_a_bad_create_is_one_chinese_line(demo, args, words):
    before = count(demo, Activity)
    one_line_error(run("activity", "create", *args), words)
    assert count(demo, Activity) == before


def _started_meeting(settings) -> int:
    """A meeting that began an hour ago and is still going, recorded after the fact."""
    start = utcnow() - timedelta(hours=1)
    return created(run("activity", "create", "--branch", BRANCH, "--kind", "支部党员大会",
                       "--start", local(settings, start), "--allow-past"))


def test_finalize_once_then_it_is_already_final(demo, settings_env):
    activity_id = _started_meeting(settings_env)
    with write_session(demo) as s:
        secretary = find_person(session=s, key=SECRETARY)
        present, excused = (find_person(session=s, key=k) for k in MEMBERS)
        mark_present(session=s, activity_id=activity_id, person_id=present.id, actor=secretary,
                     reason="现场签到时手机没电", now=utcnow())
        s.add(LeaveRequest(activity_id=activity_id, person_id=excused.id, kind=LeaveKind.SICK,
                           reason="住院", status=LeaveStatus.APPROVED))
    before = count(demo, LedgerEntry)
    first = run("activity", "finalize", str(activity_id))
    assert first.exit_code == 0, first.output
    assert "出席 1，迟到 0，请假 1，缺席 10" in first.output
    written = count(demo, LedgerEntry) - before
    assert written > 0 and f"写入积分记录 {written} 条" in first.output
    second = run("activity", "finalize", str(activity_id))
    assert second.exit_code == 0, second.output
    assert "已确认" in second.output and "本次未写入任何记录" in second.output
    assert "出席 1，迟到 0，请假 1，缺席 10" in second.output
    assert count(demo, LedgerEntry) == before + written
    listed = run("activity", "list", "--all", "--branch", BRANCH).output
    assert any(f"序号 {activity_id} " in line and "考勤已确认" in line
               for line in listed.splitlines())
    assert f"序号 {activity_id} " not in run("activity", "list").output


def test_finalize_refuses_what_has_not_begun_or_does_not_exist(demo):
    upcoming = created(run("activity", "create", "--branch", BRANCH, "--kind", "党课",
                           "--start", "明天 9:00"))
    one_line_error(run("activity", "finalize", str(upcoming)), "尚未开始")
    one_line_error(run("activity", "finalize", "9999"), "找不到活动 9999")
    assert count(demo, LedgerEntry) == 36 * 3 + 1  # the demo's own entries only


def test_finalize_due_makes_final_what_is_over(demo, settings_env):
    over = created(run("activity", "create", "--branch", BRANCH, "--kind", "党小组会",
                       "--start", "前天 9:00", "--allow-past"))
    first = run("activity", "finalize-due")
    assert first.exit_code == 0, first.output
    assert "已确认 1 个活动的考勤" in first.output
    with write_session(demo) as s:
        activity = s.get(Activity, over)
        assert activity is not None and activity.status == ActivityStatus.FINAL
        # The demo meeting under way and the one in three days are left alone.
        assert s.exec(select(func.count()).select_from(Activity).where(
            Activity.status == ActivityStatus.FINAL)).one() == 1
    before = count(demo, LedgerEntry)
    again = run("activity", "finalize-due")
    assert "没有需要确认考勤的活动" in again.output
    assert count(demo, LedgerEntry) == before


def test_close_runs_as_a_named_secretary(demo, settings_env):
    activity_id = _started_meeting(settings_env)
    one_line_error(run("activity", "close", str(activity_id), "--as", MEMBERS[0]),
                   "只有该支部的书记")
    one_line_error(run("activity", "close", str(activity_id), "--as", "nobody"), "找不到")
    closed = run("activity", "close", str(activity_id), "--as", SECRETARY)
    assert closed.exit_code == 0, closed.output
    assert "已结束签到" in closed.output
    with write_session(demo) as s:
        activity = s.get(Activity, activity_id)
        assert activity is not None and activity.status == ActivityStatus.CLOSED


def test_close_without_a_name_runs_as_the_system_and_is_audited(demo, settings_env):
    activity_id = _started_meeting(settings_env)
    closed = run("activity", "close", str(activity_id))
    assert closed.exit_code == 0, closed.output
    with write_session(demo) as s:
        activity = s.get(Activity, activity_id)
        assert activity is not None and activity.status == ActivityStatus.CLOSED
        entry = s.exec(select(AuditLog).where(AuditLog.entity == "activity",
                                              AuditLog.action == "close")).one()
        assert entry.actor_label == "system" and entry.entity_id == str(activity_id)


def test_qr_prints_the_url_the_screen_shows(demo, settings_env, tmp_path):
    activity_id = _started_meeting(settings_env)
    png = tmp_path / "签到码.png"
    result = run("activity", "qr", str(activity_id), "--png", str(png))
    assert result.exit_code == 0, result.output
    url = result.output.splitlines()[0]
    token = url.split("?t=", 1)[1]
    assert url == checkin_url(settings_env, token)
    secret = settings_env.secret_key.get_secret_value()
    window = window_index(utcnow(), settings_env.checkin_qr_rotate_s)
    assert read_token(secret=secret, token=token, current_window=window) == activity_id
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "现在扫码不能签到" not in result.output
    upcoming = created(run("activity", "create", "--branch", BRANCH, "--kind", "党课",
                           "--start", "明天 9:00"))
    assert "现在扫码不能签到" in run("activity", "qr", str(upcoming)).output
    one_line_error(run("activity", "qr", "9999"), "找不到活动")
