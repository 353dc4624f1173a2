"""The monthly evaluation's reminders and its scheduled close.

Daily: members who have not confirmed their self-evaluation hear when it opens and on its last
day; the day after the last day, each secretary with members still to score hears who; the
committee hears the day before a branch's objection window ends. Each goes out once by its
outbox key, so re-runs and catch-ups repeat nothing. Hourly: branch months whose objection
window has ended close through the points engine's month close.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import read_session, write_session
from app.domain.evaluation import SelfWindow
from app.domain.periods import month_key, month_label, previous_month
from app.domain.vocab import OrgKind, Role
from app.jobs import JobResult
from app.jobs.reminders import queue_private
from app.links import branch_evaluation_url, evaluation_url
from app.models import Organization, Person, RoleAssignment
from app.services.evaluation import self_window_for
from app.services.evaluation_publish import close_due
from app.services.evaluation_roles import is_branch_secretary, is_committee_over
from app.services.evaluation_status import (
    branches_pending_scoring,
    members_not_self_evaluated,
    windows_closing,
)
from app.services.notices import Notice

log = logging.getLogger(__name__)

SELF_EVAL_OPEN_KIND = "self-eval-open"
SELF_EVAL_DUE_KIND = "self-eval-reminder"
SCORING_KIND = "scoring-pending"
OBJECTIONS_KIND = "objection-window-closing"
# The committee hears this long before a branch's objection window ends.
OBJECTION_NOTICE_AHEAD = timedelta(days=1)


def _branches(session: Session) -> list[Organization]:
    return list(session.exec(select(Organization).where(Organization.kind == OrgKind.branch)
                             .order_by(col(Organization.path))))


def _window(session: Session, branch: Organization, period: str,
            settings: Settings) -> SelfWindow | None:
    try:
        return self_window_for(session=session, org=branch, period=period, tz=settings.tz)
    except ValueError:  # no scheme in force for that month: nothing to evaluate
        return None


def _holders(session: Session, roles: Sequence[Role]) -> list[Person]:
    """Active people holding any of `roles` somewhere (filtered per branch by the caller)."""
    return list(session.exec(
        select(Person).where(col(Person.active).is_(True), col(Person.id).in_(
            select(RoleAssignment.person_id).where(col(RoleAssignment.role).in_(roles))))
        .order_by(col(Person.id))))


def _day(when: datetime, settings: Settings) -> date:
    return when.astimezone(settings.tz).date()


def evaluation_reminders(*, engine: Engine, settings: Settings, now: datetime,
                         stop: threading.Event | None = None) -> JobResult:
    """Queue the evaluation reminders due today (once each by its key)."""
    result = JobResult("evaluation-reminders")
    today = _day(now, settings)
    this_month = month_key(now, settings.tz)
    plans: list[tuple[str, str, list[Person], Notice]] = []
    with read_session(engine) as session:
        secretaries = _holders(session, [Role.branch_secretary])
        committee = _holders(session, [Role.committee_staff, Role.admin, Role.branch_secretary])
        for branch in _branches(session):
            for period in (previous_month(this_month), this_month):
                window = _window(session, branch, period, settings)
                if window is not None:
                    plans.extend(_member_and_secretary_plans(
                        session, settings, branch, period, window, today, secretaries))
        for branch_month, branch in windows_closing(session=session, now=now,
                                                    within=OBJECTION_NOTICE_AHEAD):
            people = [p for p in committee
                      if is_committee_over(session=session, person=p, org=branch)]
            deadline = branch_month.objection_deadline
            assert deadline is not None
            local = deadline.astimezone(settings.tz)
            page = branch_evaluation_url(settings, branch.id or 0, branch_month.period)
            notice = Notice(
                f"{branch.name} {month_label(branch_month.period)}评议结果的异议期将于"
                f"{local.month}月{local.day}日 {local:%H:%M} 结束。届时没有未处理的异议即自动结账；"
                f"请及时答复异议：{page}", title="异议期即将结束")
            plans.append((OBJECTIONS_KIND, f"{branch.id}:{branch_month.period}", people, notice))
    for kind, key, people, notice in plans:
        if not queue_private(engine=engine, result=result, kind=kind, key=key, people=people,
                              notice_for=lambda _s, _p, n=notice: n, stop=stop):
            break
    if result.queued:
        log.info("evaluation reminders: %s", result.summary())
    return result


def _member_and_secretary_plans(
    session: Session, settings: Settings, branch: Organization, period: str,
    window: SelfWindow, today: date, secretaries: list[Person],
) -> list[tuple[str, str, list[Person], Notice]]:
    plans: list[tuple[str, str, list[Person], Notice]] = []
    key = f"{branch.id}:{period}"
    url = evaluation_url(settings, period)
    due = window.last_day
    if today in (_day(window.opens_at, settings), due):
        waiting = members_not_self_evaluated(session=session, branch=branch, period=period)
        opening = today == _day(window.opens_at, settings)
        words = month_label(period)
        if opening:
            text = (f"{words}积分自评已开始，截止 {due.month}月{due.day}日。"
                    f"账本已为您预填各项得分，核对后确认即可（在群里发送 /自评 也行）：{url}")
        else:
            text = (f"{words}积分自评今天（{due.month}月{due.day}日）截止，您还没有确认。"
                    f"请及时完成（发送 /自评 确认 即按预填确认）：{url}")
        plans.append((SELF_EVAL_OPEN_KIND if opening else SELF_EVAL_DUE_KIND, key, waiting,
                      Notice(text, title="积分自评提醒")))
    if today == due + timedelta(days=1):
        for _, unscored in branches_pending_scoring(session=session, org=branch,
                                                    period=period):
            names = "、".join(p.name for p in unscored[:10])
            more = f"等 {len(unscored)} 人" if len(unscored) > 10 else f"共 {len(unscored)} 人"
            people = [p for p in secretaries
                      if is_branch_secretary(session=session, person=p, branch=branch)]
            text = (f"{branch.name} {month_label(period)}自评已截止，待您评分：{names}{more}。"
                    f"可发送 /采纳自评 一键采纳自评分，或逐人评分："
                    f"{branch_evaluation_url(settings, branch.id or 0, period)}")
            plans.append((SCORING_KIND, key, people, Notice(text, title="评分提醒")))
    return plans


def evaluation_close_due(*, engine: Engine, settings: Settings, now: datetime,
                         stop: threading.Event | None = None) -> JobResult:
    """Close the branch months whose objection window has ended without open objections."""
    with write_session(engine) as session:
        done = close_due(session=session, now=now, tz=settings.tz)
    for branch, why in done.waiting:
        log.info("evaluation close of %s waits: %s", branch.name, why)
    result = JobResult("evaluation-close", closed=len(done.closed), skipped=len(done.waiting))
    if done.closed:
        log.info("evaluation close: %s", "、".join(b.name for b in done.closed))
    return result
