"""/绑定支部: binding a group chat to its branch, so boards and reminders reach it."""

from __future__ import annotations

from app.domain.vocab import OrgKind, Role
from app.services import chat_groups, orgs
from app.services.access import roles_over
from bot.dispatcher import Context, Router, UserError

router = Router()


@router.command("绑定支部", summary="把本群绑定到支部（书记或管理员）", usage="/绑定支部 支部名称",
                roles=(Role.branch_secretary, Role.admin, Role.committee_staff))
def bind(ctx: Context) -> str:
    """Bind this group to a branch the sender manages."""
    if not ctx.in_group:
        raise UserError("请在要绑定的支部群里发送这条命令。")
    if not ctx.args:
        raise UserError("请写上支部名称，例如：/绑定支部 生产第一党支部")
    name = " ".join(ctx.args)
    branch = orgs.find_by_path_or_name(ctx.session, name)
    if branch is None or branch.kind not in (OrgKind.branch, OrgKind.general_branch):
        raise UserError(f"找不到支部“{name}”，或有重名，请写完整路径（如 某公司党委/{name}）。")
    roles = roles_over(session=ctx.session, person=ctx.person, org=branch)
    if not roles & {Role.branch_secretary, Role.admin, Role.committee_staff}:
        raise UserError(f"只有{branch.name}的书记或管理员可以绑定本群。")
    chat_groups.bind_group(session=ctx.session, platform=ctx.message.platform,
                           chat_id=ctx.message.chat_id, name=ctx.message.chat_title,
                           branch=branch, actor=ctx.person)
    return f"本群已绑定到「{branch.name}」，每月积分榜和活动提醒会发到这里。"
