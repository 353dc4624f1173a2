"""Outbox commands: list queued posts, send dead ones again, run the delivery process."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.common import engine, fail, out, record_number
from app.config import load_settings_or_exit
from app.db import read_session, utcnow, write_session
from app.models import OutboxStatus
from app.services import outbox


class _Round(Protocol):
    """What the progress bar reads of a worker's round (bot.outbox_worker.Round)."""

    now: datetime
    sent: int
    dead: int


class _Worker(Protocol):
    """What the progress bar asks the worker (bot.outbox_worker.OutboxWorker)."""

    def outstanding(self, now: datetime) -> int: ...


outbox_cli = typer.Typer(help="待发消息（群公告、提醒、通知）", no_args_is_help=True)

STATUS_LABELS = {
    OutboxStatus.PENDING: "待发",
    OutboxStatus.SENDING: "发送中",
    OutboxStatus.SENT: "已发",
    OutboxStatus.FAILED: "待重试",
    OutboxStatus.DEAD: "已放弃",
}


@outbox_cli.command("list")
def list_messages(
    status: Annotated[
        str | None,
        typer.Option("--status", help="只看某状态：pending、sending、sent、failed、dead"),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="只看某类消息，如 monthly-board")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="最多显示多少条（最新的在前）")] = 50,
) -> None:
    """列出待发消息：状态、尝试次数、下次尝试时间和最后的错误。"""
    wanted = None
    if status is not None:
        try:
            wanted = OutboxStatus(status)
        except ValueError:
            choices = "、".join(s.value for s in OutboxStatus)
            fail(f"没有“{escape(status)}”这种状态，可选：{choices}")
    tz = load_settings_or_exit().tz
    with read_session(engine()) as session:
        rows = outbox.messages(
            session=session, status=wanted, kind=kind, limit=limit, newest_first=True
        )
    if not rows:
        out.print("没有符合条件的消息")
        return
    table = Table(title="待发消息（最新的在前）")
    for column in ("编号", "类型", "期间", "目标", "状态", "次数", "下次尝试", "最后的错误"):
        table.add_column(column, overflow="fold")
    for row in rows:
        settled = row.status in (OutboxStatus.SENT, OutboxStatus.DEAD)
        next_at = "" if settled else f"{row.next_attempt_at.astimezone(tz):%Y-%m-%d %H:%M:%S}"
        table.add_row(
            str(row.id),
            escape(row.kind),
            escape(row.period),
            escape(row.target),
            STATUS_LABELS.get(OutboxStatus(row.status), row.status),
            str(row.attempts),
            next_at,
            escape(row.last_error[:200]),
        )
    out.print(table)


@outbox_cli.command("retry")
def retry(
    message_id: Annotated[int | None, typer.Argument(help="消息编号", parser=record_number)] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="重发所有已放弃（dead）的消息")
    ] = False,
) -> None:
    """把已放弃（dead）或待重试（failed）的消息立即重新发送，尝试次数清零（记入审计日志）。"""
    if (message_id is None) == (not all_dead):
        fail("请给出一个消息编号，或使用 --all-dead")
    with write_session(engine()) as session:
        if all_dead:
            ids = outbox.retry_dead(session=session, now=utcnow())
            out.print(f"已重新排队 {len(ids)} 条消息" if ids else "没有已放弃的消息")
            return
        assert message_id is not None
        try:
            outbox.retry(session=session, message_id=message_id, now=utcnow())
        except outbox.OutboxError as exc:
            fail(escape(str(exc)), 1)
    out.print(f"消息 {message_id} 已重新排队，将由发送进程立即发送")


@outbox_cli.command("deliver")
def deliver(
    once: Annotated[
        bool, typer.Option("--once", help="发完当前到期的消息（包括等待限流）后退出，并显示进度")
    ] = False,
) -> None:
    """发送进程：按各机器人的频率限制发送待发消息，直到收到 SIGTERM 或 Ctrl-C。"""
    from app.main import run_outbox_worker  # the composition root wires the platforms in

    if not once:
        run_outbox_worker()
        return
    done = 0
    remaining = 0
    columns = (TextColumn("发送"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out) as progress:
        task = progress.add_task("发送", total=None)

        def on_round(worker: _Worker, result: _Round) -> None:
            nonlocal done, remaining
            done += result.sent + result.dead
            remaining = worker.outstanding(result.now)
            progress.update(task, completed=done, total=done + remaining)

        totals = run_outbox_worker(once=True, on_round=on_round)
    summary = f"已发送 {totals.sent} 条，放弃 {totals.dead} 条"
    if remaining:
        summary += f"，另有 {remaining} 条稍后重试或尚未到期"
    out.print(summary)
    if totals.dead:
        out.print("查看原因：partypoints outbox list --status dead")
