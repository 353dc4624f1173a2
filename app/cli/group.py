"""Group commands: the bound chat groups, and each group's own robot webhook."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table
from sqlmodel import Session, col, select

from app.cli.common import engine, fail, out
from app.db import read_session, write_session
from app.models import ChatGroup, Organization, Platform
from app.services import audit

group_cli = typer.Typer(help="已绑定的群", no_args_is_help=True)

PlatformOption = Annotated[str, typer.Option("--platform", help="dingtalk 或 wecom")]


def _safe(webhook: str | None) -> str | None:
    """Host and path only: the query string carries the robot's token."""
    if not webhook:
        return None
    parts = urlsplit(webhook)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _group(session: Session, platform: str, chat_id: str) -> ChatGroup:
    group = session.exec(
        select(ChatGroup).where(ChatGroup.platform == platform, ChatGroup.chat_id == chat_id)
    ).first()
    if group is None:
        fail(
            f"没有已绑定的{escape(platform)}群“{escape(chat_id)}”；"
            "请先在群里 @机器人 发送 /绑定支部",
            1,
        )
    return group


@group_cli.command("list")
def list_groups() -> None:
    """列出已绑定的群、所属组织，以及是否配置了群机器人。"""
    with read_session(engine()) as session:
        rows = session.exec(
            select(ChatGroup, Organization)
            .join(Organization, col(Organization.id) == ChatGroup.organization_id)
            .order_by(col(ChatGroup.id))
        ).all()
    if not rows:
        out.print("还没有绑定任何群")
        return
    table = Table(title="已绑定的群")
    for column in ("平台", "群 ID", "群名", "组织", "群机器人"):
        table.add_column(column, overflow="fold")
    for group, org in rows:
        robot = escape(_safe(group.robot_webhook) or "")
        if robot and group.robot_secret:
            robot += "（加签）"
        table.add_row(
            str(group.platform),
            escape(group.chat_id),
            escape(group.name),
            escape(org.name),
            robot or "—（经应用发送）",
        )
    out.print(table)


@group_cli.command("robot")
def set_robot(
    chat_id: Annotated[str, typer.Argument(help="群 ID（钉钉 openConversationId）")],
    webhook: Annotated[
        str | None,
        typer.Option("--webhook", help="群自定义机器人的 Webhook 地址（含 access_token）"),
    ] = None,
    secret: Annotated[str | None, typer.Option("--secret", help="加签密钥（SEC 开头）")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="删除群机器人，改经应用发送")] = False,
    platform: PlatformOption = Platform.DINGTALK.value,
) -> None:
    """设置群自定义机器人：此后发到该群的公告经它发送（每个机器人每分钟最多 20 条）。"""
    if clear == (webhook is not None):
        fail("请给出 --webhook，或使用 --clear")
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            fail("Webhook 须为 http(s):// 开头的完整地址")
        if secret is not None and not secret.strip():
            fail("加签密钥不能为空")
    with write_session(engine()) as session:
        group = _group(session, platform, chat_id)
        before = {
            "robot_webhook": _safe(group.robot_webhook),
            "robot_secret": "set" if group.robot_secret else None,
        }
        group.robot_webhook = webhook
        group.robot_secret = secret.strip() if webhook is not None and secret else None
        session.flush()
        # Never the token or the secret in the audit log: only where the robot is and whether
        # it signs.
        audit.record(
            session=session,
            actor_label="cli",
            action="set_robot",
            entity="chat_group",
            entity_id=group.id,
            before=before,
            after={
                "robot_webhook": _safe(group.robot_webhook),
                "robot_secret": "set" if group.robot_secret else None,
            },
        )
        name = group.name
    if clear:
        out.print(f"已删除群“{escape(name)}”的机器人，今后经应用发送")
    else:
        signed = "（加签）" if secret else ""
        out.print(f"群“{escape(name)}”今后经群机器人{signed}发送：{escape(_safe(webhook) or '')}")
