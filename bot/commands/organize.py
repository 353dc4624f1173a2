"""/发起: a branch secretary plans an activity from the chat and gets its screen and page links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.vocab import Role
from app.domain.when import EXAMPLES, take_local_datetime
from app.links import activity_url, screen_url
from app.models import Organization
from app.services.access import secretary_branches
from app.services.activities import ACTIVITY_KINDS, ActivityDefaults, create_activity
from app.services.reports import branch_of
from bot.dispatcher import Context, Router, UserError
from bot.types import Reply

router = Router()
SECRETARY = (Role.branch_secretary,)
USAGE = "/发起 类型 日期时间 [地点]"
# Further ahead than this is almost certainly a typo in the year.
HORIZON = timedelta(days=366)


def _kinds() -> str:
    return "、".join(ACTIVITY_KINDS)


def _when(ctx: Context, instant: datetime, *, day: bool = True) -> str:
    local = instant.astimezone(ctx.settings.tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}" if day else f"{local:%H:%M}"


def _span(ctx: Context, start: datetime, end: datetime) -> str:
    """11月28日 14:30–16:30, naming the second day only when it differs."""
    same_day = start.astimezone(ctx.settings.tz).date() == end.astimezone(ctx.settings.tz).date()
    return f"{_when(ctx, start)}–{_when(ctx, end, day=not same_day)}"


def _branch(ctx: Context) -> Organization:
    """The bound group's branch; else the branch the secretary runs (their own if several)."""
    if ctx.group is not None:
        org = ctx.session.get(Organization, ctx.group.organization_id)
        assert org is not None
        return org
    branches = secretary_branches(session=ctx.session, person=ctx.person)
    home = branch_of(ctx.session, ctx.person)
    if len(branches) == 1:
        return branches[0]
    if any(b.id == home.id for b in branches):
        return home
    raise UserError("您是多个支部的书记，请到要发起活动的支部群里发送这条命令。")


@router.command("发起", summary="发起支部活动（书记）", usage=USAGE, roles=SECRETARY,
                aliases=("发起活动", "新建活动"))
def organize(ctx: Context) -> Reply:
    """Create an activity for the branch and reply with its number, time and links."""
    if not ctx.args:
        raise UserError(f"请按格式发送：{USAGE}，例如 /发起 主题党日 明天 14:30 三楼会议室。"
                        f"类型可选：{_kinds()}")
    kind = ctx.args[0]
    if kind not in ACTIVITY_KINDS:
        raise UserError(f"没有“{kind}”这种活动类型。类型可选：{_kinds()}")
    now_local = ctx.now.astimezone(ctx.settings.tz)
    try:
        local_start, rest = take_local_datetime(ctx.args[1:], now_local=now_local)
    except ValueError as exc:
        raise UserError(f"{exc}。完整格式：{USAGE}") from None
    starts_at = local_start.astimezone(UTC)
    if starts_at <= ctx.now:
        raise UserError(f"开始时间 {_when(ctx, starts_at)} 已经过去，请写将来的时间，"
                        f"例如 {EXAMPLES}。")
    if starts_at - ctx.now > HORIZON:
        raise UserError(f"开始时间 {local_start.year}年{local_start.month}月{local_start.day}日"
                        "在一年以后，请检查年份。")
    activity = create_activity(
        session=ctx.session, branch=_branch(ctx), kind=kind, title=kind, starts_at=starts_at,
        place=" ".join(rest), creator=ctx.person,
        defaults=ActivityDefaults.from_settings(ctx.settings))
    assert activity.id is not None
    lines = [
        f"### 已发起活动（序号 {activity.id}）",
        f"- {activity.kind}：{_span(ctx, activity.starts_at, activity.ends_at)}",
        f"- 地点：{activity.place or '未填写'}",
        f"- 签到：{_span(ctx, activity.checkin_opens_at, activity.checkin_closes_at)}，"
        "扫会场大屏上的二维码",
        f"- 签到大屏（投到会场屏幕）：{screen_url(ctx.settings, activity.id)}",
        f"- 活动详情：{activity_url(ctx.settings, activity.id)}",
        f"不能参加的同志请发送：/请假 {activity.id} 病假|事假|公假 理由",
    ]
    return Reply("\n".join(lines), title="已发起活动", markdown=True, mention_sender=True)
