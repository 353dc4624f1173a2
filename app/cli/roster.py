"""Roster, demo data, database and server commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app import migrate
from app.cli.common import engine, err, fail, org_or_fail, out
from app.config import load_settings_or_exit
from app.db import read_session, write_session
from app.services.demo import seed_demo, seed_demo_activity
from app.services.roster import (
    ImportReport,
    RosterFileError,
    export_rows,
    import_roster,
    read_table,
    write_xlsx,
)

roster_cli = typer.Typer(help="党员名册导入与导出", no_args_is_help=True)
demo_cli = typer.Typer(help="演示数据", no_args_is_help=True)
db_cli = typer.Typer(help="数据库", no_args_is_help=True)

@db_cli.command("upgrade")
def db_upgrade() -> None:
    """把数据库迁移到最新版本。"""
    target = engine()
    migrate.upgrade(target)
    out.print(f"数据库已是最新版本（{migrate.current_revision(target)}）")


ACTIONS = {"created": "新增", "updated": "更新", "unchanged": "未变", "rejected": "拒绝"}


def _print_report(report: ImportReport, *, dry_run: bool) -> None:
    if report.errors:
        table = Table(title="未导入的行", show_lines=False)
        for col in ("行号", "列", "原因"):
            table.add_column(col)
        for e in report.errors:
            table.add_row(str(e.row), e.column, e.reason)
        err.print(table)
    changed = [c for c in report.changes if c.action != "unchanged"]
    if dry_run and changed:
        table = Table(title="将要发生的变化（试运行，未写入）")
        for col in ("行号", "姓名", "操作", "变化"):
            table.add_column(col)
        for c in changed:
            detail = "；".join(f"{k}: {a} → {b}" for k, (a, b) in c.changes.items())
            table.add_row(str(c.row), c.name, ACTIONS[c.action], detail)
        out.print(table)
    summary = "，".join(f"{ACTIONS[k]} {v}" for k, v in report.summary.items())
    prefix = "试运行（未写入）" if dry_run else "导入完成"
    out.print(f"{prefix}：{summary}")


@roster_cli.command("import")
def roster_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".xlsx 或 .csv 文件")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示变化，不写入")] = False,
) -> None:
    """导入党员名册：按 userid（否则手机号）更新已有人员，坏行逐行报告，好行照常导入。"""
    try:
        table = read_table(file)
    except RosterFileError as exc:
        fail(f"无法导入：{exc}")
    target = engine()
    columns = (TextColumn("导入中"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("import", total=len(table[1]))
        try:
            with write_session(target) as session:
                report = import_roster(
                    session=session,
                    table=table,
                    actor_label=f"roster-import:{file.name}",
                    progress=lambda n: progress.advance(task, n),
                )
                if dry_run:
                    session.rollback()
        except RosterFileError as exc:
            fail(f"无法导入：{exc}")
    _print_report(report, dry_run=dry_run)
    if report.errors:
        raise typer.Exit(1)


@roster_cli.command("export")
def roster_export(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="导出到的 .xlsx 文件")],
    org: Annotated[str | None, typer.Option(help="只导出该组织（路径或名称）及其下级")] = None,
) -> None:
    """导出党员名册（与导入格式相同）。"""
    with read_session(engine()) as session:
        root = org_or_fail(session, org) if org else None
        rows = export_rows(session=session, root=root)
    write_xlsx(file, rows)
    out.print(f"已导出 {len(rows) - 1} 人到 {file}")


@demo_cli.command("seed")
def demo_seed(
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出结果")] = False,
) -> None:
    """创建演示组织（可重复执行，不会重复创建）。"""
    settings = load_settings_or_exit()
    with write_session(engine()) as session:
        report = seed_demo(session=session)
        seed_demo_activity(session=session, now=datetime.now(UTC), tz=settings.tz)
    if as_json:
        out.print_json(json.dumps(report.summary))
    else:
        out.print("演示组织已就绪：" + "，".join(
            f"{ACTIONS[k]} {v}" for k, v in report.summary.items()))


def serve(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口", min=1, max=65535)] = 8000,
) -> None:
    """启动 Web 服务。"""
    import uvicorn

    load_settings_or_exit()
    uvicorn.run("app.main:app", host=host, port=port)

