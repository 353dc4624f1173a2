"""Activity commands: plan, list, close check-in, make attendance final, show the check-in code."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import qrcode
import typer
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pure import PyPNGImage
from rich.markup import escape
from sqlmodel import Session, col, select

from app.cli.common import engine, fail, out, record_number
from app.config import Settings, load_settings_or_exit
from app.db import read_session, utcnow, write_session
from app.domain.checkin import Outcome
from app.domain.when import parse_local_datetime
from app.links import activity_url, checkin_url, screen_url
from app.models import (
    Activity,
    ActivityBranch,
    ActivityStatus,
    Organization,
    OrgKind,
    Person,
)
from app.services import orgs
from app.services.activities import (
    ActivityDefaults,
    ActivityError,
    close_checkin,
    create_activity,
    status_at,
)
from app.services.attendance import attendance_of, finalize, finalize_due
from app.services.checkin import current_token, live_count
from app.services.ledger import LedgerError
from app.services.people import find_person

activity_cli = typer.Typer(help="活动与签到", no_args_is_help=True)

BranchOption = Annotated[str, typer.Option("--branch", help="支部（路径或名称）")]
ActivityId = Annotated[int, typer.Argument(help="活动序号", parser=record_number)]
REFUSALS = (ActivityError, LedgerError)


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit status 1 (messages may contain brackets: no markup)."""
    fail(escape(message), 1)


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)


def _local(settings: Settings, instant: datetime) -> str:
    return f"{instant.astimezone(settings.tz):%Y-%m-%d %H:%M}"


def _span(settings: Settings, start: datetime, end: datetime) -> str:
    """2026-11-28 14:30–16:30, with the end's date only when it is another day."""
    first, last = start.astimezone(settings.tz), end.astimezone(settings.tz)
    tail = f"{last:%H:%M}" if first.date() == last.date() else f"{last:%Y-%m-%d %H:%M}"
    return f"{first:%Y-%m-%d %H:%M}–{tail}"


def _org(session: Session, text: str, *, branch_only: bool) -> Organization:
    org = orgs.find_by_path_or_name(session, text)
    if org is None:
        _fail(f"找不到支部“{text}”，或名称不唯一，请写完整路径（如 某公司党委/第一党支部）")
    if branch_only and org.kind not in (OrgKind.branch, OrgKind.general_branch):
        _fail(f"“{text}”不是党支部，活动要发给支部（可用 --also-branch 再加其他支部）")
    return org


def _activity(session: Session, activity_id: int) -> Activity:
    activity = session.get(Activity, activity_id)
    if activity is None:
        _fail(f"找不到活动 {activity_id}")
    return activity


def _when(text: str, now_local: datetime, what: str, *, day: date | None = None) -> datetime:
    try:
        return parse_local_datetime(text, now_local=now_local, bare_time_day=day)
    except ValueError as exc:
        _fail(f"{what}：{exc}")


@activity_cli.command("create")
def activity_create(
    branch: BranchOption,
    kind: Annotated[str, typer.Option("--kind", help="类型，如 主题党日、党课、支委会")],
    start: Annotated[str, typer.Option("--start", help="开始时间（本地），如 2026-11-28 14:30")],
    title: Annotated[str, typer.Option("--title", help="标题，默认与类型相同")] = "",
    end: Annotated[str | None, typer.Option(
        "--end", help="结束时间，默认开始后 2 小时；只写 16:30 指开始当天")] = None,
    place: Annotated[str, typer.Option("--place", help="地点")] = "",
    also_branch: Annotated[list[str] | None, typer.Option(
        "--also-branch", help="同时参加的其他支部（可多次给出）")] = None,
    allow_past: Annotated[bool, typer.Option(
        "--allow-past", help="允许补录已开始的活动（签到窗口已过的会被自动确认考勤）")] = False,
) -> None:
    """发起活动（以系统身份；时间按 BUSINESS_TZ 本地时间）。"""
    settings = load_settings_or_exit()
    now = utcnow()
    now_local = now.astimezone(settings.tz)
    local_start = _when(start, now_local, "开始时间")
    # A bare "16:30" for the end means the start's day, not today.
    local_end = _when(end, now_local, "结束时间", day=local_start.date()) if end else None
    if local_start <= now and not allow_past:
        _fail(f"开始时间 {local_start:%Y-%m-%d %H:%M} 已经过去；补录已举行的活动请加 --allow-past")
    with write_session(engine()) as session:
        target = _org(session, branch, branch_only=True)
        others = [_org(session, name, branch_only=True) for name in also_branch or ()]
        try:
            activity = create_activity(
                session=session, branch=target, kind=kind, title=title,
                starts_at=local_start.astimezone(UTC),
                ends_at=local_end.astimezone(UTC) if local_end else None, place=place,
                also_branches=others, defaults=ActivityDefaults.from_settings(settings))
        except REFUSALS as exc:
            _fail(str(exc))
        branch_name = target.name
    assert activity.id is not None
    screen, page = screen_url(settings, activity.id), activity_url(settings, activity.id)
    where = f"，{activity.place}" if activity.place else ""
    _say(f"已创建活动 序号 {activity.id}：{activity.kind}「{activity.title}」"
         f"{_span(settings, activity.starts_at, activity.ends_at)}{where}（{branch_name}）")
    _say(f"签到时间：{_span(settings, activity.checkin_opens_at, activity.checkin_closes_at)}")
    _say(f"签到大屏：{screen}")
    _say(f"活动详情：{page}")
    if activity.checkin_closes_at < now:
        _say("注意：签到时间已过，考勤将被自动确认（未签到且未请假的记为缺席）")


@activity_cli.command("list")
def activity_list(
    branch: Annotated[str | None, typer.Option(
        "--branch", help="只看该组织（含下级支部）的活动")] = None,
    show_all: Annotated[bool, typer.Option(
        "--all", help="包括已确认考勤和已取消的活动（最新的在前）")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="最多列出几个")] = 50,
) -> None:
    """列出尚未确认考勤的活动（--all 列出全部）。"""
    settings = load_settings_or_exit()
    now = utcnow()
    with read_session(engine()) as session:
        query = select(Activity)
        if branch is not None:
            root = _org(session, branch, branch_only=False)
            # An activity is listed under every branch it is for, not only its own.
            query = query.where(col(Activity.id).in_(
                select(ActivityBranch.activity_id)
                .join(Organization, col(Organization.id) == ActivityBranch.organization_id)
                .where(col(Organization.path).startswith(root.path))))
        if show_all:
            query = query.order_by(col(Activity.starts_at).desc(), col(Activity.id).desc())
        else:
            query = query.where(col(Activity.status).not_in(
                [ActivityStatus.FINAL, ActivityStatus.CANCELLED])).order_by(
                col(Activity.starts_at), col(Activity.id))
        activities = session.exec(query.limit(limit)).all()
        if not activities:
            _say("没有活动" if show_all else "没有尚未确认考勤的活动（--all 查看全部）")
            return
        for a in activities:
            org = session.get(Organization, a.organization_id)
            count = live_count(session=session, activity=a, latest=0)
            where = f"  {a.place}" if a.place else ""
            _say(f"序号 {a.id}  {a.kind}「{a.title}」  {org.name if org else '?'}  "
                 f"{_local(settings, a.starts_at)}{where}  {status_at(a, now).label}  "
                 f"签到 {count.checked_in}/{count.expected}")


@activity_cli.command("close")
def activity_close(
    activity_id: ActivityId,
    as_user: Annotated[str | None, typer.Option(
        "--as", help="以谁的身份结束签到（钉钉/企业微信 userid 或手机号）；默认以系统身份")] = None,
) -> None:
    """立即结束签到（会议已结束）；之后可确认考勤。"""
    settings = load_settings_or_exit()
    with write_session(engine()) as session:
        actor = _person(session, as_user) if as_user else None
        try:
            activity = close_checkin(session=session, activity_id=activity_id, actor=actor,
                                     now=utcnow())
        except REFUSALS as exc:
            _fail(str(exc))
    _say(f"活动 {activity_id} 已结束签到（截至 {_local(settings, activity.checkin_closes_at)}），"
         f"可执行 partypoints activity finalize {activity_id} 确认考勤")


def _person(session: Session, key: str) -> Person:
    person = find_person(session=session, key=key)
    if person is None or not person.active:
        _fail(f"找不到钉钉userid、企业微信userid或手机号为“{key}”的在册人员")
    return person


def _counts(outcomes: list[Outcome]) -> str:
    return "，".join(f"{o.label} {sum(1 for x in outcomes if x is o)}" for o in Outcome)


@activity_cli.command("finalize")
def activity_finalize(activity_id: ActivityId) -> None:
    """确认考勤：按签到和请假记出席、迟到、请假、缺席，并按积分方案记分（只做一次）。"""
    settings = load_settings_or_exit()
    now = utcnow()
    with write_session(engine()) as session:
        activity = _activity(session, activity_id)
        if now < activity.starts_at:
            _fail(f"活动 {activity_id} 尚未开始（{_local(settings, activity.starts_at)}），"
                  "不能确认考勤")
        try:
            result = finalize(session=session, activity_id=activity_id, now=now,
                              tz=settings.tz)
        except REFUSALS as exc:
            _fail(str(exc))
        stored = [Outcome(a.outcome) for a, _ in attendance_of(session=session,
                                                               activity_id=activity_id)]
    if not result.changed:
        when = (_local(settings, result.activity.finalized_at)
                if result.activity.finalized_at else "此前")
        _say(f"活动 {activity_id} 的考勤已确认（{when}）：{_counts(stored)}；"
             "本次未写入任何记录")
        return
    notified = f"，扣分通知 {result.notified} 人" if result.notified else ""
    _say(f"活动 {activity_id} 考勤已确认：{_counts(list(result.outcomes.values()))}；"
         f"写入积分记录 {len(result.entries)} 条{notified}")


@activity_cli.command("finalize-due")
def activity_finalize_due() -> None:
    """为签到时间已过的所有活动确认考勤（定时任务也会做）。"""
    settings = load_settings_or_exit()
    done = finalize_due(engine=engine(), now=utcnow(), tz=settings.tz)
    _say(f"已确认 {done} 个活动的考勤" if done else "没有需要确认考勤的活动")


@activity_cli.command("qr")
def activity_qr(
    activity_id: ActivityId,
    png: Annotated[Path | None, typer.Option(
        "--png", dir_okay=False, help="把签到二维码另存为 PNG 文件")] = None,
) -> None:
    """显示当前的签到链接（二维码内容）；会场请用签到大屏，它会自动换码。"""
    settings = load_settings_or_exit()
    now = utcnow()
    with read_session(engine()) as session:
        activity = _activity(session, activity_id)
        state = status_at(activity, now)
    rotate = settings.checkin_qr_rotate_s
    url = checkin_url(settings, current_token(
        secret=settings.secret_key.get_secret_value(), activity_id=activity_id, now=now,
        rotate_s=rotate))
    if png is not None:
        _write_png(url, png)
    _say(url)
    if png is not None:
        _say(f"二维码已保存到 {png}")
    # A token is accepted in its own window and the next one only (app/domain/checkin.py).
    _say(f"此链接约 {2 * rotate} 秒内有效；会场请投屏签到大屏：{screen_url(settings, activity_id)}")
    if state is not ActivityStatus.OPEN:
        _say(f"注意：活动当前{state.label}，现在扫码不能签到")


def _write_png(data: str, path: Path) -> None:
    """The code as a PNG, drawn like the H5 screen's (medium error correction, narrow border)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=2)
    code.add_data(data)
    code.make(fit=True)
    try:
        with path.open("wb") as file:
            code.make_image(image_factory=PyPNGImage).save(file)
    except OSError as exc:
        _fail(f"无法写入 {path}：{exc.strerror or exc}")
