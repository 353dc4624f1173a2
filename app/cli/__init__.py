"""The `partypoints` command line for administrators."""

from __future__ import annotations

import typer

from app.cli import activity, evaluation, group, jobs, outbox, points, roster

cli = typer.Typer(help="党员积分助手管理命令", no_args_is_help=True, add_completion=False)
cli.add_typer(roster.roster_cli, name="roster")
cli.add_typer(roster.demo_cli, name="demo")
cli.add_typer(roster.db_cli, name="db")
cli.add_typer(points.scheme_cli, name="scheme")
cli.add_typer(points.month_cli, name="month")
cli.add_typer(points.points_cli, name="points")
cli.add_typer(points.report_cli, name="report")
cli.add_typer(activity.activity_cli, name="activity")
cli.add_typer(outbox.outbox_cli, name="outbox")
cli.add_typer(group.group_cli, name="group")
cli.add_typer(jobs.jobs_cli, name="jobs")
cli.add_typer(evaluation.evaluation_cli, name="evaluation")
cli.command("scheduler")(jobs.scheduler)
cli.command("serve")(roster.serve)


@cli.command("dingtalk-stream")
def dingtalk_stream() -> None:
    """连接钉钉 Stream 模式，接收群聊 @机器人 消息和卡片回调（无需公网地址）。"""
    from app.main import run_dingtalk_stream  # the composition root wires the bot in

    run_dingtalk_stream()


@cli.command("wecom-aibot")
def wecom_aibot() -> None:
    """连接企业微信智能机器人长连接，接收群聊 @机器人 消息；同时负责发送企业微信消息。"""
    from app.main import run_wecom_aibot

    run_wecom_aibot()


def main() -> None:
    """Console-script entry point."""
    cli()
