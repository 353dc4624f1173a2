"""Scheduled jobs on the real database with frozen time: each post is queued exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import func, select
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.db import utcnow, write_session
from app.jobs import board as board_job
from app.jobs.board import monthly_board
from app.jobs.reminders import (
    meeting_reminders,
    secretary_digest,
)
from app.jobs.scheduler import JobScheduler, catch_up, several_workers, start_embedded
from app.models import Organization, OutboxMessage, Person
from app.services import outbox
from app.services.activities import create_activity, decide_leave, request_leave
from app.services.attendance import finalize
from app.services.chat_groups import bind_group
from app.services.checkin import check_in, current_token
from tests.factories import build_org

TZ = ZoneInfo("Asia/Shanghai")
SECRET = "test-jobs-secret"


def local(*args: int) -> datetime:
    """A local (Beijing) instant."""
    return datetime(*args, tzinfo=TZ)


@pytest.fixture
def settings(db_url) -> Settings:
    return Settings(_env_file=None, database_url=db_url, public_base_url="https://pp.example.cn",
                    secret_key=SECRET)


@pytest.fixture
def org(db):
    """Two branches of four, with groups: two on branch 1 (DingTalk and the simulator), one on
    branch 2, and one on the committee (which gets no board)."""
    with write_session(db) as s:
        built = build_org(s, branches=2, members=4)
        b1, b2 = built.branches
        secretary = built.members[b1.id][0]
        for platform, chat_id, branch in (("dingtalk", "cid-b1", b1), ("simulator", "sim-b1", b1),
                                          ("dingtalk", "cid-b2", b2),
                                          ("dingtalk", "cid-committee", built.committee)):
            bind_group(session=s, platform=platform, chat_id=chat_id, name=chat_id, branch=branch,
                       actor=secretary)
        return {
            "committee": built.committee.id,
            "b1": b1.id,
            "b2": b2.id,
            "one": [p.id for p in built.members[b1.id]],
            "two": [p.id for p in built.members[b2.id]],
            "userid": {p.id: p.dingtalk_userid for p in built.everyone()},
        }


BRANCH_GROUPS = {"chat:cid-b1": "dingtalk", "chat:sim-b1": "simulator", "chat:cid-b2": "dingtalk"}


def rows(db, kind: str) -> list[OutboxMessage]:
    with write_session(db) as s:
        return outbox.messages(session=s, kind=kind)


def count_rows(db) -> int:
    with write_session(db) as s:
        return s.exec(select(func.count()).select_from(OutboxMessage)).one()


# --- monthly board ----------------------------------------------------------------------------

def test_the_monthly_board_run_twice_queues_one_post_per_bound_branch_group(db, org, settings):
    with time_machine.travel(local(2026, 11, 1, 9, 0), tick=False):
        first = monthly_board(engine=db, settings=settings, now=utcnow())
        second = monthly_board(engine=db, settings=settings, now=utcnow())
    assert (first.queued, first.already_queued, first.skipped) == (3, 0, 1)  # committee skipped
    assert (second.queued, second.already_queued, second.skipped) == (0, 3, 1)
    posted = rows(db, "monthly-board")
    assert {r.target: r.platform for r in posted} == BRANCH_GROUPS
    assert len(posted) == 3
    assert {r.period for r in posted} == {"2026-10"}
    by_target = {r.target: r.payload for r in posted}
    assert "第1党支部 2026年10月积分榜" in by_target["chat:cid-b1"]["text"]
    assert "第2党支部" in by_target["chat:cid-b2"]["text"]
    assert by_target["chat:cid-b1"]["markdown"] is True


def test_a_branch_without_a_scheme_is_skipped_and_the_others_still_get_their_board(db, settings):
    with write_session(db) as s:
        with_scheme = build_org(s, name="甲党委")
        without = build_org(s, name="乙党委", scheme=None)
        for chat_id, built in (("cid-a", with_scheme), ("cid-b", without)):
            branch = built.branches[0]
            bind_group(session=s, platform="dingtalk", chat_id=chat_id, name=chat_id,
                       branch=branch, actor=built.members[branch.id][0])
    result = monthly_board(engine=db, settings=settings, now=utcnow(), period="2026-10")
    assert (result.queued, result.skipped) == (1, 1)
    assert [r.target for r in rows(db, "monthly-board")] == ["chat:cid-a"]


def test_catch_up_at_10_30_on_the_first_queues_the_missed_board_once(db, org, settings):
    with time_machine.travel(local(2026, 11, 1, 8, 30), tick=False):
        assert catch_up(engine=db, settings=settings, now=utcnow()) == []  # not yet 09:00
    assert rows(db, "monthly-board") == []
    with time_machine.travel(local(2026, 11, 1, 10, 30), tick=False):
        started = {r.job: r for r in catch_up(engine=db, settings=settings, now=utcnow())}
        restarted = catch_up(engine=db, settings=settings, now=utcnow())[0]
    # The digest, 90 minutes late, is caught up too (nothing pending here), and the day's
    # evaluation reminders (none due on the 1st).
    assert set(started) == {"monthly-board", "digest", "evaluation-reminders"}
    assert started["evaluation-reminders"].queued == 0
    assert started["monthly-board"].queued == 3
    assert restarted.job == "monthly-board"
    assert (restarted.queued, restarted.already_queued) == (0, 3)
    assert {r.target for r in rows(db, "monthly-board")} == set(BRANCH_GROUPS)
    assert {r.period for r in rows(db, "monthly-board")} == {"2026-10"}


def test_the_scheduler_runs_the_board_on_the_first_at_the_configured_time(db, settings):
    settings = settings.model_copy(update={"monthly_board_at": datetime(2000, 1, 1, 7, 45).time()})
    with time_machine.travel(local(2026, 10, 31, 12, 0), tick=False):
        scheduler = JobScheduler(engine=db, settings=settings)
        scheduler.start(paused=True)
        try:
            jobs = {job.id: job for job in scheduler.scheduler.get_jobs()}
        finally:
            scheduler.stop(wait=False)
    assert jobs["monthly-board"].next_run_time == local(2026, 11, 1, 7, 45)
    assert jobs["digest"].next_run_time == local(2026, 11, 1, 9, 0)
    assert jobs["evaluation-reminders"].next_run_time == local(2026, 11, 1, 9, 0)
    assert {"meeting-reminders", "finalize-due", "catch-up"} <= set(jobs)
    for job in jobs.values():
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.misfire_grace_time >= 3600


@pytest.mark.parametrize("lock", [True, False], ids=["advisory-lock", "outbox-key-only"])
def test_two_concurrent_monthly_runs_still_queue_one_post_per_group(db, settings, monkeypatch,
                                                                   lock):
    # More groups than one batch, so that the runs interleave transactions.
    with write_session(db) as s:
        built = build_org(s, branches=3, members=2)
        for n in range(450):
            branch = built.branches[n % 3]
            bind_group(session=s, platform="dingtalk", chat_id=f"cid-{n}", name=f"群{n}",
                       branch=branch, actor=built.members[branch.id][0])
    if not lock:  # both runs go all the way: only the outbox key keeps the posts single
        monkeypatch.setattr(board_job, "job_lock", lambda session, job: True)
    barrier = threading.Barrier(2)

    def run(_: int):
        barrier.wait()
        return monthly_board(engine=db, settings=settings, now=utcnow(), period="2026-10")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, range(2)))
    posted = rows(db, "monthly-board")
    assert len(posted) == 450
    assert len({r.target for r in posted}) == 450
    assert sum(r.queued for r in results) == 450
    if not lock:
        assert all(not r.locked_out for r in results)
        assert sum(r.queued + r.already_queued for r in results) == 900


# --- meeting reminders ------------------------------------------------------------------------

@pytest.fixture
def meeting(db, org):
    """A 主题党日 on 28 November at 14:30 in branch 1: one member asked for leave (pending),
    one was refused leave, the others did not ask."""
    one = org["one"]
    with write_session(db) as s:
        activity = create_activity(
            session=s, branch=s.get(Organization, org["b1"]), kind="主题党日",
            title="学习党章", starts_at=local(2026, 11, 28, 14, 30).astimezone(UTC),
            place="三楼党员活动室", creator=s.get(Person, one[0]))
        asked = {}
        for pid in (one[1], one[2]):
            asked[pid] = request_leave(session=s, person=s.get(Person, pid),
                                       activity_id=activity.id, kind="事假", reason="出差",
                                       now=local(2026, 11, 20, 9, 0)).id
        decide_leave(session=s, leave_id=asked[one[2]], decider=s.get(Person, one[0]),
                     approve=False, reason="请安排好工作参加", now=local(2026, 11, 21, 9, 0))
        return {"id": activity.id, "reminded": {one[0], one[2], one[3]}}


def reminders_at(db, settings, *when: int):
    with time_machine.travel(local(*when), tick=False):
        return meeting_reminders(engine=db, settings=settings, now=utcnow())


def test_meeting_reminders_the_evening_before_and_the_hour_before_each_once(db, org, meeting,
                                                                             settings):
    expected = {f"user:{org['userid'][pid]}" for pid in meeting["reminded"]}
    assert reminders_at(db, settings, 2026, 11, 27, 17, 55).queued == 0
    assert count_rows(db) == 0

    evening = reminders_at(db, settings, 2026, 11, 27, 18, 0)
    assert (evening.queued, evening.skipped) == (3, 1)  # the pending leave is not reminded
    again = reminders_at(db, settings, 2026, 11, 27, 18, 5)
    assert (again.queued, again.already_queued) == (0, 3)
    day = rows(db, "meeting-reminder-day")
    assert {r.target for r in day} == expected
    assert {r.period for r in day} == {f"activity-{meeting['id']}"}
    text = day[0].payload["text"]
    assert "明天11月28日（周六） 14:30" in text
    assert "主题党日「学习党章」" in text and "三楼党员活动室" in text
    assert f"https://pp.example.cn/h5/activities/{meeting['id']}" in text
    assert rows(db, "meeting-reminder-hour") == []

    assert reminders_at(db, settings, 2026, 11, 28, 9, 0).queued == 0  # between the two
    hour = reminders_at(db, settings, 2026, 11, 28, 13, 30)
    assert hour.queued == 3
    assert reminders_at(db, settings, 2026, 11, 28, 13, 35).queued == 0
    assert reminders_at(db, settings, 2026, 11, 28, 14, 31).queued == 0  # started
    posted = rows(db, "meeting-reminder-hour")
    assert {r.target for r in posted} == expected
    assert "今天11月28日（周六） 14:30开始" in posted[0].payload["text"]
    assert len(rows(db, "meeting-reminder-day")) == 3
    assert count_rows(db) == 6


def test_a_reminder_missed_by_downtime_is_sent_late_but_not_after_the_start(db, org, meeting,
                                                                           settings):
    # Down from 17:00 to 22:00 the day before: the evening reminder still goes out at 22:00.
    assert reminders_at(db, settings, 2026, 11, 27, 22, 0).queued == 3
    # Down from 13:00 to 15:00: no hour reminder once the meeting has begun.
    assert reminders_at(db, settings, 2026, 11, 28, 15, 0).queued == 0
    assert rows(db, "meeting-reminder-hour") == []


# --- digest and self-evaluation -------------------------------------------------------------

def test_the_digest_is_skipped_when_empty_and_sent_once_a_day_otherwise(db, org, settings):
    with time_machine.travel(local(2026, 11, 25, 9, 0), tick=False):
        empty = secretary_digest(engine=db, settings=settings, now=utcnow())
    assert (empty.queued, empty.skipped) == (0, 2)
    assert rows(db, "secretary-digest") == []

    one = org["one"]
    with write_session(db) as s:
        activity = create_activity(
            session=s, branch=s.get(Organization, org["b1"]), kind="党课", title="党史学习",
            starts_at=local(2026, 11, 28, 9, 0).astimezone(UTC), creator=s.get(Person, one[0]))
        leave = request_leave(session=s, person=s.get(Person, one[1]), activity_id=activity.id,
                              kind="病假", reason="住院", now=local(2026, 11, 24, 9, 0))
    with time_machine.travel(local(2026, 11, 25, 9, 0), tick=False):
        first = secretary_digest(engine=db, settings=settings, now=utcnow())
        second = secretary_digest(engine=db, settings=settings, now=utcnow())
    assert (first.queued, first.skipped) == (1, 1)  # branch 2's secretary has nothing
    assert (second.queued, second.already_queued) == (0, 1)
    (digest,) = rows(db, "secretary-digest")
    assert (digest.target, digest.period) == (f"user:{org['userid'][one[0]]}", "2026-11-25")
    assert f"请假 Q{leave.id}" in digest.payload["text"] and "住院" in digest.payload["text"]
    with time_machine.travel(local(2026, 11, 26, 9, 0), tick=False):
        assert secretary_digest(engine=db, settings=settings, now=utcnow()).queued == 1


# --- attendance summary ---------------------------------------------------------------------

def test_attendance_made_final_posts_one_summary_to_each_group_of_its_branches(db, org,
                                                                              settings):
    start = local(2026, 11, 25, 14, 30).astimezone(UTC)
    with write_session(db) as s:
        activity = create_activity(
            session=s, branch=s.get(Organization, org["b1"]), kind="主题党日", title="学习党章",
            starts_at=start, also_branches=[s.get(Organization, org["b2"])])
    with write_session(db) as s:
        check_in(session=s, person=s.get(Person, org["one"][1]), secret=SECRET, rotate_s=20,
                 token=current_token(secret=SECRET, activity_id=activity.id, now=start,
                                     rotate_s=20), now=start)
    for _ in range(2):
        with write_session(db) as s:
            finalize(session=s, activity_id=activity.id, now=start + timedelta(hours=3), tz=TZ)
    posted = rows(db, "attendance-summary")
    assert {r.target: r.platform for r in posted} == BRANCH_GROUPS  # not the committee's
    assert {r.period for r in posted} == {f"activity-{activity.id}"}
    assert posted[0].payload["text"] == (
        "主题党日「学习党章」考勤：应到 8，出席 1，迟到 0，请假 0，缺席 7")


# --- processes and the CLI ------------------------------------------------------------------

def test_several_web_workers_refuse_the_embedded_scheduler(db, settings, monkeypatch):
    assert several_workers(["uvicorn", "app.main:app"], {}) is None
    assert several_workers(["uvicorn", "app.main:app", "--workers", "1"], {}) is None
    assert several_workers(["uvicorn", "app.main:app", "--workers", "4"], {}) == "--workers 4"
    assert several_workers(["uvicorn", "x", "--workers=2"], {}) == "--workers 2"
    assert several_workers(["gunicorn"], {"GUNICORN_CMD_ARGS": "-w 3"}) == "-w 3"
    assert several_workers(["partypoints", "serve"], {"WEB_CONCURRENCY": "2"}) == (
        "WEB_CONCURRENCY=2")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert start_embedded(engine=db, settings=settings) is None


def test_jobs_run_from_the_command_line(db, org, settings_env):
    runner = CliRunner()
    result = runner.invoke(cli, ["jobs", "run", "monthly-board", "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    assert "每月积分榜（2026-10）：新排队 3 条，此前已排队 0 条，跳过 1 个" in result.output
    again = runner.invoke(cli, ["jobs", "run", "monthly-board", "--period", "2026-10"])
    assert "新排队 0 条，此前已排队 3 条" in again.output
    assert len(rows(db, "monthly-board")) == 3
    moved = runner.invoke(cli, ["jobs", "run", "evaluation-reminders",
                                "--at", "2026-11-25 09:00"])
    assert moved.exit_code == 0, moved.output
    assert "月度评议提醒：新排队 8 条" in moved.output
    for job in ("meeting-reminders", "digest", "finalize-due", "evaluation-close"):
        done = runner.invoke(cli, ["jobs", "run", job])
        assert done.exit_code == 0, done.output
    bad = runner.invoke(cli, ["jobs", "run", "digest", "--period", "2026-10"])
    assert bad.exit_code == 2
    listing = runner.invoke(cli, ["jobs", "list"])
    assert "每月 1 日 09:00" in listing.output


def test_the_demo_simulator_groups_each_get_the_board_on_the_simulator_platform(db, settings):
    from app.domain.periods import month_key
    from app.services.demo import seed_demo, seed_demo_activity

    with write_session(db) as s:
        seed_demo(session=s)
        seed_demo_activity(session=s, now=utcnow(), tz=TZ)
    period = month_key(utcnow(), TZ)  # the demo's scheme starts this January
    result = monthly_board(engine=db, settings=settings, now=utcnow(), period=period)
    assert result.queued == 3
    posted = rows(db, "monthly-board")
    assert {r.platform for r in posted} == {"simulator"}
    assert all(r.target.startswith("chat:sim-") for r in posted)


def test_a_second_scheduler_skips_while_one_holds_the_jobs_lock(db):
    if db.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite serialises writers itself")
    from app.jobs import job_lock

    with write_session(db) as first:
        assert job_lock(first, "monthly-board:2026-10")
        with write_session(db) as second:
            assert not job_lock(second, "monthly-board:2026-10")
            assert job_lock(second, "monthly-board:2026-09")  # another period is not held
    with write_session(db) as later:  # released with the transaction
        assert job_lock(later, "monthly-board:2026-10")
