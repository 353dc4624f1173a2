"""Scheme, ledger, month-close and report commands."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.common import engine, fail, org_or_fail, out, person_or_fail, record_number
from app.config import load_settings_or_exit
from app.db import read_session, write_session
from app.domain.periods import FIRST_YEAR, LAST_YEAR, parse_month
from app.domain.scheme import SchemeError, diff_schemes, list_presets, load_scheme, preset_text
from app.models import EntrySource
from app.services import schemes
from app.services.ledger import Actor, LedgerError, record_entry, revoke_entry
from app.services.month_close import MonthCloseError, close_month
from app.services.reports import (
    ReportError,
    YearBoard,
    branch_board,
    branch_of,
    branch_year,
    member_month,
)

scheme_cli = typer.Typer(help="积分方案", no_args_is_help=True)
month_cli = typer.Typer(help="月度结账", no_args_is_help=True)
points_cli = typer.Typer(help="积分记录（管理员）", no_args_is_help=True)
report_cli = typer.Typer(help="积分报表", no_args_is_help=True)

CLI_ACTOR = Actor(label="cli")
OrgOption = Annotated[str, typer.Option("--org", help="组织（路径或名称）")]
PeriodOption = Annotated[
    str, typer.Option("--period", help="月份 2026-11、季度 2026-Q4 或年度 2026")
]
JsonOption = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]


def _scheme_problems(exc: SchemeError) -> None:
    lines = [f"{p.file}: {p.path or '(文件)'}: {p.reason}" for p in exc.problems]
    fail("积分方案有误，未做任何更改：\n" + "\n".join(lines))


@scheme_cli.command("presets")
def scheme_presets() -> None:
    """列出内置的积分方案模板。"""
    table = Table("名称", "方案", "来源")
    for preset in list_presets():
        table.add_row(preset.name, preset.title, preset.source_seed)
    out.print(table)


@scheme_cli.command("validate")
def scheme_validate(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """校验积分方案文件。"""
    try:
        scheme = load_scheme(file)
    except SchemeError as exc:
        _scheme_problems(exc)
    out.print(f"方案“{scheme.name}”有效：{len(scheme.dimensions)} 个维度，"
              f"{len(scheme.indicators)} 项指标")


@scheme_cli.command("publish")
def scheme_publish(
    org: OrgOption,
    effective: Annotated[str, typer.Option("--effective", help="生效日期（某月1日）")],
    file: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False)] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="使用内置模板")] = None,
) -> None:
    """发布积分方案的新版本（用文件或内置模板）。"""
    if (file is None) == (preset is None):
        fail("请给出方案文件，或用 --preset 选择内置模板（二者选一）")
    try:
        effective_from = date.fromisoformat(effective)
    except ValueError:
        fail(f"“{effective}”不是有效日期（例如 2026-12-01）")
    try:
        content = preset_text(preset) if preset else file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    except (ValueError, UnicodeDecodeError) as exc:
        fail(str(exc))
    with write_session(engine()) as session:
        target = org_or_fail(session, org)
        try:
            version = schemes.publish(session=session, org=target, content=content,
                                      effective_from=effective_from, actor_label="cli",
                                      source_name=str(file or f"preset:{preset}"))
        except SchemeError as exc:
            _scheme_problems(exc)
        except schemes.SchemePublishError as exc:
            fail(str(exc))
        out.print(f"已发布“{version.name}”第 {version.version} 版，自 {effective_from} 起生效")


@scheme_cli.command("diff")
def scheme_diff(
    org: OrgOption,
    old: Annotated[int | None, typer.Option("--from", help="旧版本号（默认倒数第二版）")] = None,
    new: Annotated[int | None, typer.Option("--to", help="新版本号（默认最新版）")] = None,
) -> None:
    """显示两个方案版本之间的变化。"""
    with read_session(engine()) as session:
        published = {v.version: v for v in schemes.versions(session=session,
                                                            org=org_or_fail(session, org))}
    if len(published) < 2 and (old is None or new is None):
        fail("该组织的方案不足两个版本，无可比较")
    numbers = sorted(published)
    old = old if old is not None else numbers[-2]
    new = new if new is not None else numbers[-1]
    if old not in published or new not in published:
        fail(f"版本号应在 {numbers[0]}–{numbers[-1]} 之间")
    lines = diff_schemes(schemes.scheme_of(published[old]), schemes.scheme_of(published[new]))
    out.print(f"第 {old} 版 → 第 {new} 版：")
    for line in lines or ["（没有变化）"]:
        out.print(f"  {line}", markup=False)


@month_cli.command("close")
def month_close(
    period: Annotated[str, typer.Argument(help="月份，例如 2026-11")], org: OrgOption
) -> None:
    """月度结账：冻结该月所有成员的积分、排名（重复执行不会改变结果）。"""
    _valid_period(period)
    with write_session(engine()) as session:
        target = org_or_fail(session, org)
        try:
            outcome = close_month(session=session, org=target, period=period, actor_label="cli")
        except MonthCloseError as exc:
            fail(str(exc))
        close = outcome.close
        if not outcome.created:
            out.print(f"{period} 已于 {close.closed_at:%Y-%m-%d %H:%M} 结账（UTC），结果未改变")
            return
        out.print(f"{period} 已结账：{close.members} 名党员的积分已冻结")
        if outcome.pending_not_counted:
            out.print(f"注意：{outcome.pending_not_counted} 条待审核记录未计入本月")


def _valid_period(period: str) -> None:
    try:
        parse_month(period)
    except ValueError as exc:
        fail(str(exc))


@points_cli.command("add")
def points_add(
    member: Annotated[str, typer.Option("--member", help="钉钉/企业微信 userid 或手机号")],
    indicator: Annotated[str, typer.Option("--indicator", help="指标代码")],
    reason: Annotated[str, typer.Option("--reason", help="原因（必填）")],
    count: Annotated[int, typer.Option("--count", min=1, help="次数")] = 1,
    at: Annotated[str | None, typer.Option("--at", help="发生日期，默认今天")] = None,
) -> None:
    """为党员记一条积分（管理员调整，立即生效，记入审计日志）。"""
    settings = load_settings_or_exit()
    try:
        occurred_on = date.fromisoformat(at) if at else _today(settings.tz)
    except ValueError:
        fail(f"“{at}”不是有效日期（例如 2026-11-05）")
    with write_session(engine()) as session:
        person = person_or_fail(session, member)
        try:
            entry = record_entry(session=session, member_id=person.id, indicator_code=indicator,
                                 occurred_on=occurred_on, reason=reason, actor=CLI_ACTOR,
                                 count=count, source=EntrySource.ADJUSTMENT)
        except LedgerError as exc:
            fail(str(exc))
        out.print(f"已记入 #{entry.id}：{person.name} {indicator} {_signed(entry.points)} 分"
                  f"（{entry.period}）")


@points_cli.command("revoke")
def points_revoke(
    entry_id: Annotated[int, typer.Argument(help="积分记录编号", parser=record_number)],
    reason: Annotated[str, typer.Option("--reason", help="冲销原因（必填）")],
) -> None:
    """冲销一条积分记录（新增一条反向记录，原记录保留）。"""
    settings = load_settings_or_exit()
    with write_session(engine()) as session:
        try:
            reversal = revoke_entry(session=session, entry_id=entry_id, reason=reason,
                                    actor=CLI_ACTOR, today=_today(settings.tz))
        except LedgerError as exc:
            fail(str(exc))
        out.print(f"已冲销 #{entry_id}：新增冲销记录 #{reversal.id}，"
                  f"{_signed(reversal.points)} 分记入 {reversal.period}")


def _today(tz: tzinfo) -> date:
    return datetime.now(tz).date()


def _signed(value: Decimal) -> str:
    return f"{value:+.2f}".rstrip("0").rstrip(".")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Decimal | date):
        return str(value)
    return value


def _points(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _year_of(period: str) -> tuple[int, int | None] | None:
    """(year, quarter or None) for `2026` or `2026-Q4`; None for anything else."""
    text = period.strip().upper()
    if not (text[:4].isascii() and text[:4].isdigit()
            and FIRST_YEAR <= int(text[:4]) <= LAST_YEAR):
        return None
    if len(text) == 4:
        return int(text), None
    if len(text) == 7 and text[4:6] == "-Q" and text[6] in "1234":
        return int(text[:4]), int(text[6])
    return None


def _report_period(period: str) -> tuple[int, int | None] | None:
    """(year, quarter) for a yearly or quarterly report; None for a valid month; else exit."""
    yearly = _year_of(period)
    if yearly is None:
        _valid_period(period)
    return yearly


def _year_board(session: Any, branch: Any, year: int) -> YearBoard:
    today = _today(load_settings_or_exit().tz)
    if year > today.year:
        fail(f"{year} 年尚未开始")
    through = 12 if year < today.year else today.month
    try:
        return branch_year(session=session, branch=branch, year=year, through=through)
    except ReportError as exc:
        fail(str(exc))


def _print_year_row(row: Any, board: YearBoard, quarter: int | None) -> None:
    out.print(f"{row.name}（{board.branch_name}） {board.year} 年（截至 {board.through} 月）")
    if quarter is not None:
        summary = row.quarters.get(f"{board.year}-Q{quarter}")
        if summary is None:
            out.print("该季度没有积分月份")
            return
        out.print(f"第{quarter}季度：月均基础分 {_points(summary.average_base)}，加分 "
                  f"{_points(summary.bonus)}，合计 {_points(summary.total)}")
        return
    months = Table("月份", "基础分", "加分", "合计")
    for key, score in row.months.items():
        total = "一票否决" if score.vetoed else _points(score.total)
        months.add_row(key, _points(score.base), _points(score.bonus), total)
    out.print(months)
    year = row.year
    if year is None:
        out.print("该年度不在计分范围内（入党时间晚于统计期）")
        return
    review = "（尚无民主评议分，按月均基础分计）" if year.review_missing else ""
    out.print(f"年度积分 {_points(year.score)}{review}：月均基础分 {_points(year.average_base)}"
              f"（{year.eligible_months} 个月），加分 {_points(year.bonus)}")
    out.print(f"等级：{row.grade or '—'}；支部排名：{row.rank or '—'}；档次：{row.tier or '—'}")


@report_cli.command("member")
def report_member(
    userid: Annotated[str, typer.Argument(help="钉钉/企业微信 userid 或手机号")],
    period: PeriodOption,
    as_json: JsonOption = False,
) -> None:
    """党员积分明细：某月直到每条记录；季度、年度按方案公式汇总。"""
    yearly = _report_period(period)
    with read_session(engine()) as session:
        person = person_or_fail(session, userid)
        if yearly is not None:
            board = _year_board(session, branch_of(session, person), yearly[0])
            row = next((r for r in board.rows if r.person_id == person.id), None)
            if row is None:
                fail(f"{person.name} 不参加党员积分")
            if as_json:
                out.print_json(json.dumps(_jsonable(row), ensure_ascii=False))
            else:
                _print_year_row(row, board, yearly[1])
            return
        try:
            report = member_month(session=session, person=person, period=period)
        except ReportError as exc:
            fail(str(exc))
    if as_json:
        out.print_json(json.dumps(_jsonable(report), ensure_ascii=False))
        return
    score = report.score
    state = "已结账" if report.closed else "未结账，实时计算"
    version = f"方案第{report.scheme_version}版"
    out.print(f"{report.name}（{report.branch_name}） {period}（{state}，{version}）")
    veto = "（一票否决）" if score.vetoed else ""
    rank = (f"第 {report.rank_in_branch} 名 / {report.branch_size} 人"
            if report.rank_in_branch else "不排名")
    out.print(f"合计 {_points(report.total)}{veto}：基础分 {_points(score.base)} + 加分 "
              f"{_points(score.bonus)}；支部排名 {rank}")
    dims = Table("维度", "得分", "满分", "说明")
    for d in score.dimensions:
        note = "已封顶/保底" if d.clamped else ""
        dims.add_row(d.name, _points(d.score), _points(d.max), note)
        for s in d.subdimensions:
            dims.add_row(f"  └ {s.name}", _points(s.score), _points(s.max),
                         "已封顶/保底" if s.clamped else "")
    out.print(dims)
    entries = Table("编号", "日期", "指标", "分值", "状态", "原因", "记录人")
    status = {"approved": "有效", "pending": "待审核", "rejected": "已驳回"}
    for e in report.entries:
        why = e.reason + (f"（冲销 #{e.reversal_of}）" if e.reversal_of else "")
        entries.add_row(str(e.id), str(e.occurred_on), e.indicator_name, _signed(e.points),
                        status[e.status], why, e.created_by)
    out.print(entries)


@report_cli.command("branch")
def report_branch(
    org: Annotated[str, typer.Argument(help="支部（路径或名称）")],
    period: PeriodOption,
    as_json: JsonOption = False,
) -> None:
    """支部积分榜与平均分（月度；或年度：含等级、档次）。"""
    yearly = _report_period(period)
    with read_session(engine()) as session:
        branch = org_or_fail(session, org)
        if yearly is not None:
            _print_year_board(_year_board(session, branch, yearly[0]), as_json)
            return
        try:
            board = branch_board(session=session, branch=branch, period=period)
        except ReportError as exc:
            fail(str(exc))
    if as_json:
        out.print_json(json.dumps(_jsonable(board), ensure_ascii=False))
        return
    state = "已结账" if board.closed else "未结账，实时计算"
    table = Table("排名", "姓名", "基础分", "加分", "合计",
                  title=f"{board.branch_name} {period} 积分榜（{state}）")
    for row in board.rows:
        total = "一票否决" if row.vetoed else _points(row.total)
        table.add_row(str(row.rank or "—"), row.name, _points(row.base), _points(row.bonus), total)
    out.print(table)
    out.print(f"支部平均分：{_points(board.average)}")


def _print_year_board(board: YearBoard, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(_jsonable(board), ensure_ascii=False))
        return
    table = Table("排名", "姓名", "年度积分", "等级", "档次",
                  title=f"{board.branch_name} {board.year} 年度积分（截至 {board.through} 月）")
    for row in board.rows:
        score = "一票否决" if row.year and row.year.vetoed else _points(
            row.year.score if row.year else None)
        table.add_row(str(row.rank or "—"), row.name, score, row.grade or "—", row.tier or "—")
    out.print(table)
    out.print(f"支部平均分：{_points(board.average)}")
