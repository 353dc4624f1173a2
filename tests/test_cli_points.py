"""Scheme, points, month-close and report commands, in-process against the test database."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import write_session
from app.domain.scheme import preset_text as preset
from app.models import SchemeVersion

runner = CliRunner()
ORG = "示范集团党委"
MEMBER = "demo-dt-005"  # an ordinary member of 生产第一党支部 in the demo roster


def run(*args):
    return runner.invoke(cli, list(args))


@pytest.fixture
def demo(db, settings_env):
    """The demo organisation; its seed publishes the xinluo preset from January 1st."""
    assert run("demo", "seed").exit_code == 0
    return db


def total(period: str) -> str:
    return json.loads(run("report", "member", MEMBER, "--period", period, "--json").output)[
        "total"]


def test_presets_are_listed(settings_env):
    result = run("scheme", "presets")
    assert result.exit_code == 0
    for name in ("xinluo", "jiangzhong", "datang"):
        assert name in result.output


def test_validate_names_every_problem_with_its_path(tmp_path, settings_env):
    bad = preset("xinluo").replace("dimension: political", "dimension: nowhere", 1)
    bad = bad.replace("code: study_notes", "code: online_study", 1)
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    result = run("scheme", "validate", str(path))
    assert result.exit_code == 2
    assert "indicators[0].dimension" in result.output
    assert "indicators[1].code" in result.output
    assert "未做任何更改" in result.output


def test_publish_refuses_a_bad_file_and_a_mid_month_date(demo, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("code: x\n", encoding="utf-8")
    assert run("scheme", "publish", str(path), "--org", ORG, "--effective",
               "2026-12-01").exit_code == 2
    mid = run("scheme", "publish", "--org", ORG, "--preset", "xinluo", "--effective",
              "2026-12-15")
    assert mid.exit_code == 2 and "1日" in mid.output
    with write_session(demo) as s:
        assert len(s.exec(select(SchemeVersion)).all()) == 1


def test_diff_shows_what_changed_between_versions(demo, tmp_path):
    path = tmp_path / "v2.yaml"
    path.write_text(preset("xinluo").replace("cap_per_month: 5\n", "cap_per_month: 6\n", 1),
                    encoding="utf-8")
    assert run("scheme", "publish", str(path), "--org", ORG, "--effective",
               "2026-12-01").exit_code == 0
    result = run("scheme", "diff", "--org", ORG)
    assert result.exit_code == 0, result.output
    assert "第 1 版 → 第 2 版" in result.output and "online_study" in result.output


def test_points_add_revoke_close_and_report(demo):
    before = Decimal(total("2026-11"))
    added = run("points", "add", "--member", MEMBER, "--indicator", "volunteering", "--count",
                "2", "--at", "2026-11-05", "--reason", "参加志愿服务")
    assert added.exit_code == 0, added.output
    assert "+6" in added.output
    entry_id = re.search(r"#(\d+)", added.output).group(1)
    data = json.loads(run("report", "member", MEMBER, "--period", "2026-11", "--json").output)
    assert Decimal(data["total"]) == before + 6
    assert any(e["reason"] == "参加志愿服务" for e in data["entries"])
    revoked = run("points", "revoke", entry_id, "--reason", "重复录入")
    assert revoked.exit_code == 0 and "-6" in revoked.output
    assert Decimal(total("2026-11")) == before
    closed = run("month", "close", "2026-11", "--org", ORG)
    assert closed.exit_code == 0 and "36 名党员" in closed.output
    assert "结果未改变" in run("month", "close", "2026-11", "--org", ORG).output
    late = run("points", "add", "--member", MEMBER, "--indicator", "online_study", "--at",
               "2026-11-20", "--reason", "补录")
    assert late.exit_code == 2 and "已结账" in late.output
    board = run("report", "branch", "生产第一党支部", "--period", "2026-11")
    assert board.exit_code == 0 and "已结账" in board.output and "平均分" in board.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(("points", "add", "--member", "nobody", "--indicator", "x", "--reason", "r"), "找不到"),
     (("points", "add", "--member", MEMBER, "--indicator", "nope", "--at", "2026-11-01",
       "--reason", "r"), "没有指标"),
     (("points", "revoke", "999", "--reason", "r"), "找不到积分记录"),
     (("month", "close", "2026-13", "--org", ORG), "不是有效的月份"),
     (("report", "branch", "不存在", "--period", "2026-11"), "找不到组织"),
     # Numbers and years the database or the calendar cannot hold: no traceback.
     (("points", "revoke", "99999999999", "--reason", "r"), "不是有效的编号"),
     (("activity", "close", "2147483648"), "不是有效的编号"),
     (("outbox", "retry", "abc"), "不是有效的编号"),
     (("report", "branch", "生产第一党支部", "--period", "0000"), "不是有效的月份"),
     (("report", "branch", "生产第一党支部", "--period", "0000-Q1"), "不是有效的月份"),
     (("points", "add", "--member", MEMBER, "--indicator", "online_study", "--count",
       "99999999999", "--reason", "r"), "次数必须是 1 到 1000"),
     (("serve", "--port", "99999999"), "--port")],
)
def test_bad_input_gets_a_chinese_message_and_exit_2(demo, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_year_and_quarter_reports(demo):
    assert run("points", "add", "--member", MEMBER, "--indicator", "volunteering", "--count",
               "2", "--at", "2026-02-05", "--reason", "志愿服务").exit_code == 0
    year = run("report", "member", MEMBER, "--period", "2026")
    assert year.exit_code == 0, year.output
    assert "年度积分" in year.output and "尚无民主评议分" in year.output
    quarter = run("report", "member", MEMBER, "--period", "2026-Q1")
    assert "第1季度" in quarter.output and "2.00" in quarter.output  # 6 points over 3 months
    board = json.loads(run("report", "branch", "生产第一党支部", "--period", "2026",
                           "--json").output)
    assert board["rows"][0]["rank"] == 1 and len(board["rows"]) == 12
    assert run("report", "member", MEMBER, "--period", "2099").exit_code == 2
