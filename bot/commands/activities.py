"""/活动 and /请假: upcoming activities and asking for leave, with a card to the secretary."""

from __future__ import annotations

from app.domain.ids import record_id
from app.models import Activity, LeaveStatus
from app.services.activities import LEAVE_KINDS, ActivityError, request_leave, upcoming
from app.services.notices import queue_leave_requested
from bot.dispatcher import Context, Router, UserError
from bot.types import Outcome, Reply

router = Router()


def local(ctx: Context, instant) -> str:  # type: ignore[no-untyped-def]
    """A UTC instant as the business time zone's 11月28日 14:30."""
    when = instant.astimezone(ctx.settings.tz)
    return f"{when.month}月{when.day}日 {when:%H:%M}"


@router.command("活动", summary="查看本支部近期活动和我的请假状态", aliases=("近期活动",))
def activities(ctx: Context) -> Reply:
    """Upcoming and open activities of the asker's branch."""
    views = upcoming(session=ctx.session, person=ctx.person, now=ctx.now)
    if not views:
        return Reply("本支部近期没有安排活动。", mention_sender=True)
    lines = ["### 近期活动"]
    for view in views:
        a = view.activity
        status = ""
        if view.leave is not None:
            status = f"（请假 Q{view.leave.id}：{LeaveStatus(view.leave.status).label}）"
        place = f"，{a.place}" if a.place else ""
        when = local(ctx, a.starts_at)
        lines.append(f"- 序号 {a.id}：{a.kind}「{a.title}」{when}{place}{status}")
    lines.append("不能参加请发送：/请假 序号 病假|事假|公假 理由")
    return Reply("\n".join(lines), title="近期活动", markdown=True, mention_sender=True)


@router.command("请假", summary="为某次活动请假", usage="/请假 活动序号 病假|事假|公假 理由")
def ask_leave(ctx: Context) -> Outcome:
    """Create a leave request and send the branch secretary a card to decide it."""
    activity_id = record_id(ctx.args[0]) if ctx.args else None
    if len(ctx.args) < 3 or activity_id is None:
        kinds = "|".join(LEAVE_KINDS)
        raise UserError(f"请按格式发送：/请假 活动序号 {kinds} 理由，例如 /请假 3 事假 出差在外。"
                        "发送 /活动 查看序号。")
    try:
        leave = request_leave(session=ctx.session, person=ctx.person,
                              activity_id=activity_id, kind=ctx.args[1],
                              reason=" ".join(ctx.args[2:]), now=ctx.now)
    except ActivityError as exc:
        hint = "，请先发送 /活动 查看序号" if str(exc).startswith("找不到活动") else ""
        raise UserError(f"{exc}{hint}") from None
    activity = ctx.session.get(Activity, leave.activity_id)
    assert activity is not None
    # The card goes through the outbox in this transaction: a failed send is retried, and
    # nothing is posted for a request that did not commit.
    reached = queue_leave_requested(session=ctx.session, leave=leave,
                                    when=local(ctx, activity.starts_at))
    text = f"已提交请假申请 Q{leave.id}，等待支部书记审批，结果会私信通知您。"
    if not reached:
        text += "（本支部暂未登记书记账号，请直接联系支部书记。）"
    return Outcome(Reply(text, mention_sender=True))
