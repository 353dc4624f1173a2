"""Evaluation commands: progress per branch, and the committee's spot checks."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import engine, fail, org_or_fail, out, person_or_fail
from app.config import load_settings_or_exit
from app.db import read_session, utcnow, write_session
from app.domain.periods import month_key, parse_month, previous_month
from app.services.evaluation_status import evaluation_status
from app.services.spot_checks import draw_spot_check, spot_check_items

evaluation_cli = typer.Typer(help="月度评议（自评、评分、公示、异议、结账）", no_args_is_help=True)

OrgOption = Annotated[str, typer.Option("--org", help="组织路径或名称，如 示范集团党委")]
PeriodOption = Annotated[str | None, typer.Option("--period", help="月份，如 2026-11；默认上月")]


def _period(text: str | None) -> str:
    """The month asked for, by default last month (the one usually being evaluated)."""
    if text is None:
        return previous_month(month_key(utcnow(), load_settings_or_exit().tz))
    try:
        parse_month(text)
    except ValueError:
        fail(f"月份“{escape(text)}”格式不对，应为 2026-11 这样的写法")
    return text


@evaluation_cli.command("status")
def status(org: OrgOption, period: PeriodOption = None) -> None:
    """各支部的评议进度：已自评 x/y、已评分、已公示、未处理异议、阶段。"""
    month, tz = _period(period), load_settings_or_exit().tz
    with read_session(engine()) as session:
        rows = evaluation_status(session=session, org=org_or_fail(session, org), period=month)
    if not rows:
        out.print("该组织下没有党支部")
        return
    table = Table(title=f"{month} 月度评议进度")
    for column in ("支部", "阶段", "已自评", "逾期", "已评分", "已公示", "未处理异议", "异议截止"):
        table.add_column(column)
    for row in rows:
        deadline = (row.objection_deadline.astimezone(tz).strftime("%m-%d %H:%M")
                    if row.objection_deadline else "—")
        table.add_row(escape(row.branch_name), row.phase.label,
                      f"{row.self_evaluated}/{row.members}", str(row.late),
                      f"{row.scored}/{row.members}", f"{row.published}/{row.members}",
                      str(row.objections_open), deadline)
    out.print(table)


@evaluation_cli.command("spot-check")
def spot_check(
    org: OrgOption,
    actor: Annotated[str, typer.Option("--as", help="组织抽查的党委成员（userid 或手机号）")],
    period: PeriodOption = None,
    size: Annotated[int | None, typer.Option("--size", help="抽取条数")] = None,
    percent: Annotated[str | None, typer.Option("--percent", help="抽取比例，如 10 表示 10%")
                       ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="随机种子；同一种子可重现抽样")
                    ] = None,
) -> None:
    """从已通过的申报中随机抽查（记录种子，可重现）。"""
    if (size is None) == (percent is None):
        fail("请给出 --size 或 --percent 其中之一")
    try:
        share = Decimal(percent) if percent is not None else None
    except InvalidOperation:
        fail(f"比例“{escape(percent or '')}”不是数字")
    month = _period(period)
    with write_session(engine()) as session:
        try:
            check = draw_spot_check(
                session=session, committee_actor=person_or_fail(session, actor),
                org=org_or_fail(session, org), period=month, size=size, percent=share,
                seed=seed, now=utcnow())
        except ValueError as refused:
            fail(escape(str(refused)))
        items = spot_check_items(session=session, check=check)
        out.print(f"抽查 #{check.id}：{month}，从 {len(check.population)} 条已通过申报中抽取 "
                  f"{len(check.drawn)} 条，随机种子 {check.seed}")
        for item in items:
            out.print(f"- 申报 S{item.entry_id}", markup=False)
