"""/帮助 and the answer to anything that is not a command."""

from __future__ import annotations

from bot.dispatcher import Context, Router
from bot.parsing import normalise
from bot.types import Reply

router = Router()


@router.command("帮助", summary="查看我可以使用的命令", aliases=("help", "菜单", "?", "？"))
def help_(ctx: Context) -> Reply:
    """The commands this person may use."""
    lines = ["### 党员积分助手", "可以在群里 @我 或私聊我发送："]
    lines.extend(f"- {c.usage}：{c.summary}" for c in ctx.commands if c.allowed(ctx.roles))
    return Reply("\n".join(lines), title="使用帮助", markdown=True, mention_sender=True)


def unknown(ctx: Context) -> Reply:
    """A short hint for text that is not a command, rather than silence."""
    said = normalise(ctx.message.text)
    head = f"没看懂“{said[:20]}”。" if said else "您好！"
    return Reply(f"{head}常用命令：/我的积分、/排行、/活动、/请假。发送 /帮助 查看全部。",
                 mention_sender=True)
