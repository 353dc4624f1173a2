"""The `partypoints` command line, run in-process against the test database."""

from __future__ import annotations

from openpyxl import load_workbook
from sqlmodel import func, select
from typer.testing import CliRunner

from app.cli import cli
from app.db import write_session
from app.models import (
    Activity,
    ChatGroup,
    LedgerEntry,
    Organization,
    Person,
    Role,
    RoleAssignment,
    SchemeVersion,
)
from tests.rosters import person, write_xlsx

runner = CliRunner()


def count(db, model):
    with write_session(db) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_roster_import_prints_bad_rows_and_a_summary(db, settings_env, tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", [person("好人", 1), person("坏人", 2, 手机号="12")])
    result = runner.invoke(cli, ["roster", "import", str(path)])
    assert result.exit_code == 1
    assert "新增 1" in result.output and "拒绝 1" in result.output
    assert "3" in result.output and "手机号" in result.output  # spreadsheet row 3
    assert count(db, Person) == 1


def test_roster_import_dry_run_writes_nothing(db, settings_env, tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", [person("张三", 1)])
    result = runner.invoke(cli, ["roster", "import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "试运行" in result.output and "张三" in result.output
    assert count(db, Person) == 0


def test_roster_import_of_an_unreadable_file_exits_2(db, settings_env, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("姓名\n张三\n", encoding="utf-8")
    result = runner.invoke(cli, ["roster", "import", str(path)])
    assert result.exit_code == 2
    assert "缺少必填列" in result.output


def test_unknown_option_is_a_usage_error(settings_env):
    result = runner.invoke(cli, ["roster", "import", "--no-such-flag", "x.xlsx"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_demo_seed_is_idempotent(db, settings_env):
    first = runner.invoke(cli, ["demo", "seed", "--json"])
    assert first.exit_code == 0, first.output
    assert '"created": 36' in first.output
    second = runner.invoke(cli, ["demo", "seed", "--json"])
    assert '"unchanged": 36' in second.output
    assert count(db, Person) == 36
    assert count(db, ChatGroup) == 3
    # Something to show in the simulator, once: the scheme, points, an upcoming meeting and one
    # under way (for the check-in screen), per branch.
    assert count(db, SchemeVersion) == 1 and count(db, Activity) == 6
    assert count(db, LedgerEntry) == 36 * 3 + 1
    with write_session(db) as s:
        kinds = sorted(o.kind for o in s.exec(select(Organization)))
        secretaries = s.exec(
            select(func.count()).select_from(RoleAssignment).where(
                RoleAssignment.role == Role.branch_secretary)
        ).one()
    assert kinds.count("branch") == 3 and kinds.count("committee") == 1
    assert secretaries == 3


def test_roster_export_writes_the_import_format(db, settings_env, tmp_path):
    runner.invoke(cli, ["demo", "seed"])
    out = tmp_path / "out.xlsx"
    result = runner.invoke(cli, ["roster", "export", str(out), "--org", "生产第一党支部"])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "姓名" and len(rows) == 13
    missing = runner.invoke(cli, ["roster", "export", str(out), "--org", "不存在的支部"])
    assert missing.exit_code == 2 and "找不到组织" in missing.output
