"""/我的积分 and /排行: a member's points and the branch board, as the ranking mode allows."""

from __future__ import annotations

from decimal import Decimal

from app.domain.periods import month_key, month_label, parse_month, previous_month
from app.domain.scheme import RankingMode, Scheme
from app.domain.scoring import BoardRow as VisibleRow
from app.domain.scoring import visible_board
from app.links import my_points_url
from app.models import Organization
from app.services import schemes
from app.services.board_post import board_row_line
from app.services.reports import (
    ReportError,
    YearBoard,
    branch_board,
    branch_of,
    branch_year,
    member_standing,
)
from bot.dispatcher import Context, Router, UserError
from bot.types import Notification, Outcome, Reply

router = Router()


def fmt(value: Decimal | None) -> str:
    """Points as people write them: 93.5, 90, -2."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def period_of(ctx: Context) -> str:
    """The month the user asked about: 本月 (default), 上月, or 2026-10."""
    this_month = month_key(ctx.now, ctx.settings.tz)
    word = ctx.args[0] if ctx.args else "本月"
    if word == "本月":
        return this_month
    if word == "上月":
        return previous_month(this_month)
    try:
        parse_month(word)
    except ValueError:
        hint = "可以写：本月、上月、本年，或 2026-10 这样的月份。"
        raise UserError(f"看不懂“{word}”。{hint}") from None
    if word > this_month:
        raise UserError(f"{month_label(word)}还没到，请写本月或之前的月份。")
    return word


def _ranking(ctx: Context, period: str) -> tuple[RankingMode, int | None]:
    branch = branch_of(ctx.session, ctx.person)
    version = schemes.version_for(session=ctx.session, org=branch, period=period)
    if version is None:
        raise UserError(f"{month_label(period)}还没有生效的积分方案，请联系党委管理员。")
    scheme: Scheme = schemes.scheme_of(version)
    return scheme.ranking.mode, scheme.ranking.n


def _private(ctx: Context, text: str) -> list[Notification]:
    """Send something to the asker alone (their own rank is never posted to a group unasked)."""
    return [Notification(ctx.message.platform, Reply(text, markdown=True),
                         user_id=ctx.message.sender_userid)]


@router.command("我的积分", summary="查看我的积分、各项明细和排名",
                usage="/我的积分 [本月|上月|本年|2026-10]", aliases=("积分", "我的分数"))
def my_points(ctx: Context) -> Outcome:
    """The asker's month (or year) with breakdown, rank and pending items."""
    if ctx.args and ctx.args[0] in ("本年", "今年"):
        return _my_year(ctx)
    period = period_of(ctx)
    report = member_standing(session=ctx.session, person=ctx.person, period=period)
    score = report.score
    total = "一票否决，本月不计分" if score.vetoed else f"**{fmt(report.total)}** 分"
    lines = [f"### {ctx.person.name} · {month_label(period)}积分",
             f"合计 {total}（基础分 {fmt(score.base)} + 加分 {fmt(score.bonus)}）"
             + ("，已结账" if report.closed else "")]
    for d in score.dimensions:
        lines.append(f"- {d.name}：{fmt(d.score)} / {fmt(d.max)}")
    if report.pending.count:
        lines.append(f"- 待审核：{report.pending.count} 条（合计 {fmt(report.pending.points)} 分）")
    rank_line, notifications = _own_rank(
        ctx, mode=report.scheme.ranking.mode, label=month_label(period),
        rank=report.rank_in_branch, size=report.branch_size)
    lines.append(rank_line)
    lines.append("发送 /排行 查看支部积分榜。")
    lines.append(f"详情：{my_points_url(ctx.settings, period)}")
    return Outcome(Reply("\n".join(lines), title="我的积分", markdown=True,
                         mention_sender=True), notifications)


def _own_rank(ctx: Context, *, mode: RankingMode, label: str, rank: int | None, size: int
              ) -> tuple[str, list[Notification]]:
    """The asker's rank: in the reply where everyone may see ranks (or in a 1:1 chat), else
    privately, with a line saying so."""
    if rank is None:
        return "暂无支部排名", []
    text = f"支部排名：第 {rank} 名 / 共 {size} 人"
    if mode is RankingMode.full or not ctx.in_group:
        return text, []
    return "排名已私信发给您。", _private(ctx, f"{ctx.person.name}，您{label}的{text}（仅您可见）")


def _this_year(ctx: Context, branch: Organization) -> YearBoard:
    """The branch's year through this month."""
    year, month = parse_month(month_key(ctx.now, ctx.settings.tz))
    try:
        return branch_year(session=ctx.session, branch=branch, year=year, through=month)
    except ReportError as exc:
        raise UserError(str(exc)) from None


def _my_year(ctx: Context) -> Outcome:
    board = _this_year(ctx, branch_of(ctx.session, ctx.person))
    year, month = board.year, board.through
    row = next((r for r in board.rows if r.person_id == ctx.person.id), None)
    if row is None or row.year is None:
        raise UserError(f"您在 {year} 年还没有计分月份。")
    lines = [f"### {ctx.person.name} · {year}年积分（截至{month}月）",
             f"年度积分（按方案公式）：**{fmt(row.year.score)}**",
             f"- 月均基础分：{fmt(row.year.average_base)}（{row.year.eligible_months} 个月）",
             f"- 累计加分：{fmt(row.year.bonus)}"]
    if row.year.review_missing:
        lines.append("- 民主评议分尚未录入，暂按月均基础分计算")
    if row.grade:
        lines.append(f"- 当前等级：{row.grade}")
    mode, _ = _ranking(ctx, f"{year:04d}-{month:02d}")
    rank_line, notifications = _own_rank(ctx, mode=mode, label=f"{year}年度", rank=row.rank,
                                         size=len(board.rows))
    lines.append(rank_line)
    return Outcome(Reply("\n".join(lines), title="我的年度积分", markdown=True,
                         mention_sender=True), notifications)


def _board_lines(visible: list[VisibleRow]) -> list[str]:
    return [board_row_line(r) for r in visible] or ["（暂无数据）"]


@router.command("排行", summary="查看本支部积分榜", usage="/排行 [本月|上月|本年]",
                aliases=("排名", "积分榜", "排行榜"))
def board(ctx: Context) -> Outcome:
    """The branch board for a month or the year so far, cut to what the ranking mode lets
    others see."""
    if ctx.args and ctx.args[0] in ("本年", "今年"):
        branch = branch_of(ctx.session, ctx.person)
        year = _this_year(ctx, branch)
        period = f"{year.year:04d}-{year.through:02d}"
        rows = [VisibleRow(r.person_id, r.name, r.year.score if r.year else None, r.rank)
                for r in year.rows]
        heading = f"{branch.name} {year.year}年度积分榜（截至{year.through}月）"
        return _board_reply(ctx, period=period, heading=heading, rows=rows,
                            own_label=f"{year.year}年度", own_score="年度积分")
    period = period_of(ctx)
    branch = branch_of(ctx.session, ctx.person)
    try:
        full = branch_board(session=ctx.session, branch=branch, period=period)
    except ReportError as exc:
        raise UserError(str(exc)) from None
    rows = [VisibleRow(r.person_id, r.name, r.total, r.rank) for r in full.rows]
    state = "已结账" if full.closed else "实时"
    return _board_reply(ctx, period=period,
                        heading=f"{branch.name} {month_label(period)}积分榜（{state}）",
                        rows=rows, own_label=month_label(period), own_score="积分")


def _board_reply(ctx: Context, *, period: str, heading: str, rows: list[VisibleRow],
                 own_label: str, own_score: str) -> Outcome:
    """A board cut to the ranking mode of `period`; the asker's own row is added, in the
    reply where only they see it (1:1), else privately."""
    mode, n = _ranking(ctx, period)
    cut = visible_board(mode=mode, rows=rows, viewer_key=ctx.person.id, n=n)
    lines = [f"### {heading}"]
    if mode is RankingMode.off:
        lines.append("本支部未开启排名公示。")
    elif mode is RankingMode.aggregates:
        lines.append(f"参与人数 {cut.members}，平均分 {fmt(cut.average)}")
    else:
        if mode is RankingMode.top_n:
            lines.append(f"前 {n} 名：")
        lines.extend(_board_lines(list(cut.rows)))
        if cut.average is not None:
            lines.append(f"支部平均分：{fmt(cut.average)}")
    own = cut.own
    own_line = (f"您的{own_score} {fmt(own.score)}，第 {own.rank} 名" if own and own.rank
                else "您暂无排名")
    notifications: list[Notification] = []
    if own is None or own not in cut.rows:
        # The asker's own row is theirs to see, but never posted to the group unless public.
        if ctx.in_group:
            notifications = _private(ctx, f"{own_label}，{own_line}（仅您可见）")
        else:
            lines.append(own_line)
    return Outcome(Reply("\n".join(lines), title="支部积分榜", markdown=True), notifications)
