"""Private reminders: meetings (the day before and the hour before) and the secretaries' daily
digest of what waits for them (the evaluation's reminders are in app.jobs.evaluation)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import read_session, write_session
from app.domain.vocab import Role
from app.jobs import JobResult, batches, job_lock, points_text, queued_targets
from app.links import activity_url
from app.models import (
    Activity,
    ActivityStatus,
    LeaveKind,
    LeaveRequest,
    LeaveStatus,
    Person,
    RoleAssignment,
)
from app.services.activities import expected_attendees, pending_leaves
from app.services.ledger import indicator_name, pending_in_branches
from app.services.notices import Notice, home_platform, send_to_person

log = logging.getLogger(__name__)

DAY_KIND = "meeting-reminder-day"
HOUR_KIND = "meeting-reminder-hour"
DIGEST_KIND = "secretary-digest"
DAY_BEFORE_AT = time(18, 0)
HOUR_BEFORE = timedelta(hours=1)
# From 18:00 the day before to the end of the meeting's day is at most 30 hours.
LOOKAHEAD = timedelta(hours=31)
# A digest lists this many items of each sort; the rest are counted.
DIGEST_LINES = 10
WEEKDAYS = "一二三四五六日"

NoticeFor = Callable[[Session, Person], Notice | None]


def queue_private(*, engine: Engine, result: JobResult, kind: str, key: str,
                   people: Sequence[Person], notice_for: NoticeFor,
                   stop: threading.Event | None) -> bool:
    """Queue `notice_for(person)` to each person once (kind, key); False if locked out.

    Notices are composed in a read session; only people without a row get a short write
    transaction, so an idle re-run (every five minutes for meetings) writes nothing.
    """
    for chunk in batches(people, stop=stop):
        todo: list[tuple[Person, Notice]] = []
        with read_session(engine) as session:
            targets = {p.id: f"user:{home[1]}" for p in chunk
                       if (home := home_platform(p)) is not None}
            queued = queued_targets(session, kind=kind, period=key, targets=targets.values())
            for person in chunk:
                target = targets.get(person.id)
                if target is None:
                    result.skipped += 1  # no DingTalk or WeCom account to reach them on
                elif target in queued:
                    result.already_queued += 1
                elif (notice := notice_for(session, person)) is None:
                    result.skipped += 1
                else:
                    todo.append((person, notice))
        if not todo:
            continue
        with write_session(engine) as session:
            if not job_lock(session, f"{kind}:{key}"):
                result.locked_out = True
                return False
            for person, notice in todo:
                send_to_person(session=session, person=person, kind=kind, key=key,
                               notice=notice)
                result.queued += 1
    return True


# --- meetings ---------------------------------------------------------------------------------

def due_meeting_reminder(*, starts_at: datetime, now: datetime, tz: ZoneInfo) -> str | None:
    """Which reminder is due for a meeting at `now`: the hour-before one within the last hour,
    the day-before one from 18:00 the day before until then, else none."""
    if now >= starts_at:
        return None
    if now >= starts_at - HOUR_BEFORE:
        return HOUR_KIND
    day_before = datetime.combine(starts_at.astimezone(tz).date() - timedelta(days=1),
                                  DAY_BEFORE_AT, tzinfo=tz)
    return DAY_KIND if now >= day_before else None


def _day_words(day: date, today: date) -> str:
    relative = {0: "今天", 1: "明天", 2: "后天"}.get((day - today).days)
    dated = f"{day.month}月{day.day}日（周{WEEKDAYS[day.weekday()]}）"
    return f"{relative}{dated}" if relative else dated


def meeting_notice(*, activity: Activity, kind: str, now: datetime,
                   settings: Settings) -> Notice:
    """The reminder a member gets before a meeting: when, where, and the activity page."""
    start = activity.starts_at.astimezone(settings.tz)
    when = f"{_day_words(start.date(), now.astimezone(settings.tz).date())} {start:%H:%M}"
    place = f"，地点：{activity.place}" if activity.place else ""
    what = f"{activity.kind}「{activity.title}」"
    url = activity_url(settings, activity.id or 0)
    if kind == HOUR_KIND:
        text = (f"会议提醒：{what}将于{when}开始{place}。到场后请扫描会场大屏上的二维码签到。"
                f"\n详情：{url}")
    else:
        text = (f"会议提醒：{when}召开{what}{place}。请准时参加；如不能参加，请在开始前请假。"
                f"\n详情与请假：{url}")
    return Notice(text, title="会议提醒")


def meeting_reminders(*, engine: Engine, settings: Settings, now: datetime,
                      stop: threading.Event | None = None) -> JobResult:
    """Queue the reminders due at `now` to expected attendees who have not asked for leave.

    Run every few minutes: the reminder due is decided here and each goes out once by its key,
    so a late or repeated run neither misses nor repeats one.
    """
    result = JobResult("meeting-reminders")
    with read_session(engine) as session:
        upcoming = session.exec(
            select(Activity).where(
                Activity.starts_at > now, Activity.starts_at <= now + LOOKAHEAD,
                col(Activity.status).not_in([ActivityStatus.FINAL, ActivityStatus.CANCELLED]))
            .order_by(col(Activity.starts_at), col(Activity.id))
        ).all()
        plans: list[tuple[Activity, str, list[Person]]] = []
        for activity in upcoming:
            kind = due_meeting_reminder(starts_at=activity.starts_at, now=now, tz=settings.tz)
            if kind is None:
                continue
            # Pending and approved leave both mean "I will not come"; a rejected request
            # means the member is expected after all, so they are reminded.
            away = set(session.exec(
                select(LeaveRequest.person_id).where(
                    LeaveRequest.activity_id == activity.id,
                    col(LeaveRequest.status).in_([LeaveStatus.PENDING, LeaveStatus.APPROVED]))))
            expected = expected_attendees(session=session, activity=activity)
            people = [p for p in expected if p.id not in away]
            result.skipped += len(expected) - len(people)
            plans.append((activity, kind, people))
    for activity, kind, people in plans:
        notice = meeting_notice(activity=activity, kind=kind, now=now, settings=settings)
        if not queue_private(engine=engine, result=result, kind=kind,
                              key=f"activity-{activity.id}", people=people,
                              notice_for=lambda _s, _p, n=notice: n, stop=stop):
            break
    if result.queued:
        log.info("meeting reminders: %s", result.summary())
    return result


# --- secretaries' digest ----------------------------------------------------------------------

def digest_notice(*, session: Session, settings: Settings, secretary: Person,
                  day: date) -> Notice | None:
    """What waits for a secretary: pending leave requests and declarations; None if nothing."""
    leaves = pending_leaves(session=session, secretary=secretary)
    entries = pending_in_branches(session=session, secretary=secretary)
    if not leaves and not entries:
        return None
    parts = [f"{n} 条{what}" for n, what in ((len(leaves), "请假申请"), (len(entries), "积分申报"))
             if n]
    lines = [f"### 待办提醒（{day.month}月{day.day}日）", f"您有 {'、'.join(parts)}待审批："]
    for leave in leaves[:DIGEST_LINES]:
        member = session.get(Person, leave.person_id)
        activity = session.get(Activity, leave.activity_id)
        what = ""
        if activity is not None:
            start = activity.starts_at.astimezone(settings.tz)
            what = f"{activity.kind}「{activity.title}」{start.month}月{start.day}日 {start:%H:%M}"
        lines.append(f"- 请假 Q{leave.id}：{member.name if member else '?'}，{what}，"
                     f"{LeaveKind(leave.kind).label}：{leave.reason}")
    if len(leaves) > DIGEST_LINES:
        lines.append(f"- ……另有 {len(leaves) - DIGEST_LINES} 条请假申请")
    for entry, name in entries[:DIGEST_LINES]:
        lines.append(f"- 申报 S{entry.id}：{name}，{indicator_name(session=session, entry=entry)}"
                     f" {points_text(entry.points)} 分，{entry.reason}")
    if len(entries) > DIGEST_LINES:
        lines.append(f"- ……另有 {len(entries) - DIGEST_LINES} 条积分申报")
    lines.append("回复 /待办 查看全部；/批准 编号 或 /驳回 编号 理由 处理"
                 f"（请假也可在 {settings.public_base_url.rstrip('/')}/h5/approvals 审批）")
    return Notice("\n".join(lines), title="待办提醒", markdown=True)


def secretary_digest(*, engine: Engine, settings: Settings, now: datetime,
                     day: date | None = None, stop: threading.Event | None = None) -> JobResult:
    """Queue today's digest to each branch secretary with something pending (once a day)."""
    day = day or now.astimezone(settings.tz).date()
    result = JobResult("digest")
    with read_session(engine) as session:
        secretaries = session.exec(
            select(Person).where(
                col(Person.active).is_(True),
                col(Person.id).in_(select(RoleAssignment.person_id).where(
                    RoleAssignment.role == Role.branch_secretary)))
            .order_by(col(Person.id))
        ).all()
    queue_private(engine=engine, result=result, kind=DIGEST_KIND, key=day.isoformat(),
                   people=secretaries, stop=stop,
                   notice_for=lambda s, p: digest_notice(session=s, settings=settings,
                                                         secretary=p, day=day))
    log.info("secretary digest %s: %s", day.isoformat(), result.summary())
    return result
