"""The evaluation's scheduled work: reminders on the scheme's days, once each, and the close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from app.config import Settings
from app.db import write_session
from app.jobs.evaluation import evaluation_close_due, evaluation_reminders
from app.jobs.scheduler import JOBS, catch_up
from app.models import BranchMonth, OutboxMessage
from app.services import orgs
from app.services.evaluation import confirm_self_evaluation
from app.services.people import find_person
from tests.chat import conformance as suite

TZ = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int = 9) -> datetime:
    year = 2026 if month <= 12 else 2027
    return datetime(year, (month - 1) % 12 + 1, day, hour, tzinfo=TZ)


def posted(db, kind: str) -> list[OutboxMessage]:
    with write_session(db) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind)
                           .order_by(col(OutboxMessage.id))).all())


def run(db, settings: Settings, when: datetime):
    return evaluation_reminders(engine=db, settings=settings, now=when.astimezone(UTC))


def test_members_hear_when_it_opens_and_on_the_last_day_only_if_not_confirmed(db, db_url):
    settings = Settings(_env_file=None, database_url=db_url)
    suite.seed_world(db, datetime.now(UTC))
    assert run(db, settings, local(11, 24)).queued == 0
    first, again = run(db, settings, local(11, 25)), run(db, settings, local(11, 25))
    assert first.queued == 36 and (again.queued, again.already_queued) == (0, 36)
    opening = posted(db, "self-eval-open")
    assert "2026年11月积分自评已开始，截止 12月5日" in opening[0].payload["text"]
    assert "/h5/evaluation?period=2026-11" in opening[0].payload["text"]
    with write_session(db) as s:
        member = find_person(session=s, key=suite.MEMBER)
        confirm_self_evaluation(session=s, member=member, period="2026-11", adjustments=None,
                                note="", now=local(11, 26).astimezone(UTC), tz=TZ)
    assert run(db, settings, local(12, 4)).queued == 0
    assert run(db, settings, local(12, 5)).queued == 35  # everyone but the one who confirmed
    due = posted(db, "self-eval-reminder")
    assert f"user:{suite.MEMBER}" not in {r.target for r in due}
    assert "今天（12月5日）截止" in due[0].payload["text"]


def test_secretaries_hear_who_is_left_to_score_the_day_after_the_deadline(db, db_url):
    settings = Settings(_env_file=None, database_url=db_url)
    suite.seed_world(db, datetime.now(UTC))
    assert run(db, settings, local(12, 6)).queued == 3  # one secretary per branch
    rows = posted(db, "scoring-pending")
    to_secretary = next(r for r in rows if r.target == f"user:{suite.SECRETARY}")
    assert suite.BRANCH in to_secretary.payload["text"] and "/采纳自评" in to_secretary.payload[
        "text"]
    assert run(db, settings, local(12, 6)).queued == 0


def test_the_committee_hears_before_the_objection_window_ends(db, db_url):
    settings = Settings(_env_file=None, database_url=db_url)
    suite.seed_world(db, datetime.now(UTC))
    when = local(12, 10)
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        s.add(BranchMonth(branch_id=branch.id, period="2026-11",
                          published_at=when.astimezone(UTC) - timedelta(days=2),
                          objection_deadline=when.astimezone(UTC) + timedelta(hours=20)))
    result = run(db, settings, when)
    rows = posted(db, "objection-window-closing")
    # The demo's two committee members (党委工作人员) and nobody else.
    assert len(rows) == result.queued == 2
    assert {r.target for r in rows} == {"user:demo-dt-004", "user:demo-dt-016"}
    assert "异议期将于12月11日 05:00 结束" in rows[0].payload["text"]


def test_a_branch_month_past_its_objection_window_is_closed_once(db, db_url):
    settings = Settings(_env_file=None, database_url=db_url)
    suite.seed_world(db, datetime.now(UTC))
    when = local(12, 10).astimezone(UTC)
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        s.add(BranchMonth(branch_id=branch.id, period="2026-11", published_at=when,
                          objection_deadline=when - timedelta(hours=1)))
    assert evaluation_close_due(engine=db, settings=settings, now=when).closed == 1
    assert evaluation_close_due(engine=db, settings=settings, now=when).closed == 0
    with write_session(db) as s:
        assert s.exec(select(BranchMonth)).one().closed_at is not None


def test_the_jobs_are_scheduled_and_caught_up(db, db_url):
    settings = Settings(_env_file=None, database_url=db_url)
    suite.seed_world(db, datetime.now(UTC))
    assert {"evaluation-reminders", "evaluation-close"} <= set(JOBS)
    results = catch_up(engine=db, settings=settings, now=local(11, 25, 10).astimezone(UTC))
    assert any(r.job == "evaluation-reminders" and r.queued == 36 for r in results)
