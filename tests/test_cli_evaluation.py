"""`partypoints evaluation status` shows a branch moving through each phase; spot checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import write_session
from app.models import Person, RoleAssignment
from app.services import orgs
from app.services.evaluation import accept_self_scores, confirm_self_evaluation, score_member
from app.services.evaluation_publish import close_due, publish_branch_month
from app.services.ledger import Actor, review_entry
from app.services.people import find_person
from tests.chat import conformance as suite

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = "2026-11"
COMMITTEE_IN_BRANCH = "demo-dt-004"  # 党委工作人员 homed in 生产第一党支部
COMMITTEE_ELSEWHERE = "demo-dt-016"  # 党委工作人员 homed in another branch


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, tzinfo=TZ).astimezone(UTC)


def branch_row(output: str) -> str:
    return next(line for line in output.splitlines() if suite.BRANCH in line)


def status(runner: CliRunner) -> str:
    result = runner.invoke(cli, ["evaluation", "status", "--org", "示范集团党委",
                                 "--period", PERIOD])
    assert result.exit_code == 0, result.output
    return branch_row(result.output)


def test_status_follows_a_branch_from_self_evaluation_to_close(db, settings_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    ids = suite.seed_world(db, datetime.now(UTC))
    runner = CliRunner()
    assert "自评中" in status(runner) and "0/12" in status(runner)
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        people = s.exec(select(Person).where(Person.id.in_(  # type: ignore[union-attr]
            select(RoleAssignment.person_id).where(RoleAssignment.organization_id == branch.id)
        ))).all()
        for person in people:
            confirm_self_evaluation(session=s, member=person, period=PERIOD, adjustments=None,
                                    note="", now=at(11, 26), tz=TZ)
    assert "评分中" in status(runner) and "12/12" in status(runner)
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        secretary = find_person(session=s, key=suite.SECRETARY)
        # The committee scores the branch secretary; the secretary takes the others' self scores.
        committee = find_person(session=s, key=COMMITTEE_IN_BRANCH)
        month = score_member(session=s, secretary=committee, member_id=secretary.id,
                             period=PERIOD, assessed=_self_scores(s, secretary), reason="",
                             now=at(12, 6), tz=TZ)
        assert month.state == "scored"
        accepted = accept_self_scores(session=s, secretary=secretary, branch=branch,
                                      period=PERIOD, now=at(12, 6)).accepted
        assert len(accepted) == 11
    assert "待公示" in status(runner)
    with write_session(db) as s:
        reviewer = find_person(session=s, key=suite.SECRETARY)
        review_entry(session=s, entry_id=ids["declared"], approve=True, reason="",
                     actor=Actor(reviewer.name, reviewer.id))
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        publish_branch_month(session=s, committee_actor=find_person(
            session=s, key=COMMITTEE_ELSEWHERE), branch=branch, period=PERIOD, now=at(12, 7),
            tz=TZ)
    assert "公示中" in status(runner) and "12-10 10:00" in status(runner)
    with write_session(db) as s:
        assert [b.name for b in close_due(session=s, now=at(12, 10) + timedelta(minutes=1),
                                          tz=TZ).closed] == [suite.BRANCH]
    assert "已结账" in status(runner)


def _self_scores(session, person: Person) -> dict[str, Decimal]:
    from app.services.evaluation_base import find_month, score_values

    month = find_month(session=session, person_id=person.id, period=PERIOD)
    assert month is not None
    return score_values(month.self_scores)


def test_status_and_spot_check_refusals_are_clear(db, settings_env):
    suite.seed_world(db, datetime.now(UTC))
    runner = CliRunner()
    bad = runner.invoke(cli, ["evaluation", "status", "--org", "示范集团党委", "--period", "11月"])
    assert bad.exit_code == 2 and "格式不对" in bad.output
    nobody = runner.invoke(cli, ["evaluation", "spot-check", "--org", "示范集团党委",
                                 "--as", suite.MEMBER, "--period", PERIOD, "--size", "2"])
    assert nobody.exit_code == 2 and "只有党委可以组织抽查" in nobody.output
    empty = runner.invoke(cli, ["evaluation", "spot-check", "--org", "示范集团党委",
                                "--as", COMMITTEE_ELSEWHERE, "--period", PERIOD, "--size", "2"])
    assert empty.exit_code == 2 and "没有可抽查的已通过申报" in empty.output
    both = runner.invoke(cli, ["evaluation", "spot-check", "--org", "示范集团党委",
                               "--as", COMMITTEE_ELSEWHERE, "--size", "2", "--percent", "10"])
    assert both.exit_code == 2 and "其中之一" in both.output
