"""Scheduler commands: the production scheduler process, and running one job by hand."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from app.cli.common import engine, fail, out
from app.config import Settings, load_settings_or_exit
from app.db import make_engine, utcnow
from app.domain.periods import parse_month
from app.domain.when import parse_local_datetime

jobs_cli = typer.Typer(help="定时任务：每月积分榜、会议提醒、待办提醒、自评提醒、自动确认考勤",
                       no_args_is_help=True)


class JobName(StrEnum):
    """The jobs `jobs run` knows (the same as the scheduler's)."""

    monthly_board = "monthly-board"
    meeting_reminders = "meeting-reminders"
    digest = "digest"
    evaluation_reminders = "evaluation-reminders"
    evaluation_close = "evaluation-close"
    finalize_due = "finalize-due"


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)


def _logging(settings: Settings) -> None:
    """Progress of long fan-outs goes to stderr as log lines."""
    level = logging.getLevelName(settings.log_level.upper())
    logging.basicConfig(level=level if isinstance(level, int) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs two INFO lines per run (every minute); our jobs log what they did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _now(settings: Settings, at: str | None) -> datetime:
    if at is None:
        return utcnow()
    try:
        local = parse_local_datetime(at, now_local=utcnow().astimezone(settings.tz))
    except ValueError as exc:
        fail(escape(f"--at：{exc}"), 1)
    return local.astimezone(UTC)


@jobs_cli.command("run")
def jobs_run(
    job: Annotated[JobName, typer.Argument(help="任务名", show_default=False)],
    period: Annotated[str | None, typer.Option(
        "--period", help="monthly-board：要发布的月份，如 2026-10（默认上个月）")] = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="假定现在是这个本地时间（拨动时钟），如 \"2026-11-27 18:00\"")] = None,
) -> None:
    """立即运行一个定时任务（只写入待发消息，由发送进程投递；重复运行不会重复发送）。"""
    from app.jobs.scheduler import JOBS  # importing the jobs is slower than the CLI's startup

    settings = load_settings_or_exit()
    _logging(settings)
    now = _now(settings, at)
    kwargs: dict[str, Any] = {}
    if period is not None:
        if job is not JobName.monthly_board:
            fail("--period 只用于 monthly-board", 2)
        try:
            parse_month(period)
        except ValueError as exc:
            fail(escape(str(exc)), 2)
        kwargs["period"] = period
    spec = JOBS[job.value]
    result = spec.run(engine=engine(), settings=settings, now=now, **kwargs)
    what = f"{spec.label}（{period}）" if period else spec.label
    _say(f"{what}：{result.summary()}")


@jobs_cli.command("list")
def jobs_list() -> None:
    """列出定时任务及其运行时间（按 BUSINESS_TZ）。"""
    from app.jobs.scheduler import (
        EVALUATION_CLOSE_EVERY,
        EVALUATION_REMINDERS_AT,
        FINALIZE_DUE_EVERY,
        JOBS,
        MEETING_REMINDERS_EVERY,
    )

    settings = load_settings_or_exit()
    when = {
        "monthly-board": f"每月 1 日 {settings.monthly_board_at:%H:%M}，发布上月积分榜到各支部群",
        "meeting-reminders": f"每 {MEETING_REMINDERS_EVERY.seconds // 60} 分钟检查："
                             "会前一天 18:00、会前 1 小时提醒应到且未请假的党员",
        "digest": f"每天 {settings.digest_at:%H:%M}，有待审批事项的支部书记",
        "evaluation-reminders": f"每天 {EVALUATION_REMINDERS_AT:%H:%M}：自评开始和截止日提醒"
                                "未确认的党员，截止次日提醒书记评分，异议期结束前一天提醒党委",
        "evaluation-close": f"每 {EVALUATION_CLOSE_EVERY.seconds // 3600} 小时，"
                            "异议期已过且无未处理异议的支部自动结账",
        "finalize-due": f"每 {FINALIZE_DUE_EVERY.seconds // 60} 分钟，签到时间已过的活动",
    }
    for name, spec in JOBS.items():
        _say(f"{name}  {spec.label}：{when[name]}")
    _say(f"时区：{settings.business_tz}")


def scheduler() -> None:
    """运行定时任务进程（生产环境只运行一个；Ctrl-C 或 SIGTERM 后处理完当前批次再退出）。"""
    from app.jobs.scheduler import run_forever

    settings = load_settings_or_exit()
    _logging(settings)
    _say("定时任务已启动（Ctrl-C 停止）；待发消息由发送进程投递")
    # Jobs may overlap (the minute job during a long fan-out): one connection each.
    run_forever(engine=make_engine(settings.database_url, pool_size=5), settings=settings)
    _say("定时任务已停止")
