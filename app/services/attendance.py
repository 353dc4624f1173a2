"""Making an activity's attendance final: outcomes per expected attendee, and their points."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import read_session, write_session
from app.domain.checkin import Outcome, attendance_outcome, indicators_for
from app.domain.periods import month_key_of, parse_month
from app.domain.refusals import Refusal
from app.domain.scheme import AttendanceRules
from app.domain.vocab import MemberType
from app.jobs.attendance_summary import queue_attendance_summary
from app.models import (
    Activity,
    ActivityStatus,
    Attendance,
    CheckIn,
    EntrySource,
    LeaveRequest,
    LeaveStatus,
    LedgerEntry,
    Organization,
    Person,
)
from app.services import audit, notices, schemes
from app.services.activities import ActivityError, expected_attendees, managed_activity
from app.services.ledger import (
    Actor,
    LedgerError,
    first_open_period,
    indicator_name,
    record_entry,
)

log = logging.getLogger(__name__)


@dataclass
class FinalResult:
    """What making attendance final did; `changed` is False when it had been done before."""

    activity: Activity
    changed: bool
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    notified: int = 0

    def count(self, outcome: Outcome) -> int:
        """How many expected attendees came to `outcome`."""
        return sum(1 for o in self.outcomes.values() if o is outcome)


def finalize(
    *, session: Session, activity_id: int, now: datetime, tz: ZoneInfo,
    actor: Person | None = None,
) -> FinalResult:
    """Make attendance final once: outcomes, ledger entries by the scheme, deduction notices.

    A person (secretary) may do it at any time after the start; the system does it after the
    check-in window. Doing it again changes nothing.
    """
    if actor is not None:
        activity = managed_activity(session=session, activity_id=activity_id, person=actor)
        if now < activity.starts_at:
            raise ActivityError("活动尚未开始，不能确认考勤", kind=Refusal.conflict)
    else:
        found = session.get(Activity, activity_id)
        if found is None:
            raise ActivityError(f"找不到活动 {activity_id}", kind=Refusal.not_found)
        activity = found
    if activity.status == ActivityStatus.CANCELLED:
        raise ActivityError("活动已取消，无需确认考勤", kind=Refusal.conflict)
    # One conditional UPDATE decides who finalises: a second caller, even a concurrent one,
    # matches no row and records nothing.
    claimed = session.execute(
        update(Activity)
        .where(col(Activity.id) == activity_id,
               col(Activity.status).not_in([ActivityStatus.FINAL, ActivityStatus.CANCELLED]))
        .values(status=ActivityStatus.FINAL.value, finalized_at=now,
                checkin_closes_at=min(activity.checkin_closes_at, now))
        .returning(Activity.id)
    ).first()
    session.refresh(activity)
    if claimed is None:
        return FinalResult(activity, changed=False)
    result = FinalResult(activity, changed=True)
    checked = {c.person_id: c for c in session.exec(
        select(CheckIn).where(CheckIn.activity_id == activity_id))}
    leaves = {leave.person_id: leave for leave in session.exec(
        select(LeaveRequest).where(LeaveRequest.activity_id == activity_id,
                                   LeaveRequest.status == LeaveStatus.APPROVED))}
    who = Actor(actor.name, actor.id) if actor is not None else Actor("考勤系统")
    day = activity.starts_at.astimezone(tz).date()
    for person in expected_attendees(session=session, activity=activity):
        assert person.id is not None
        check = checked.get(person.id)
        leave = leaves.get(person.id)
        rules = _attendance_rules(session, person, day)
        outcome = attendance_outcome(
            checked_in=check is not None, late=bool(check and check.late),
            approved_leave_kind=str(leave.kind) if leave else None,
            excused_kinds=rules.excused_leave if rules else ("sick", "personal", "official"))
        # A 群众 invited to the meeting (e.g. an activist at 党课) has attendance, not points.
        scored = rules is not None and person.member_type != MemberType.masses
        codes = indicators_for(outcome, present=rules.present, late=rules.late,
                               absent=rules.absent) if rules and scored else []
        entries = [_record(session, person, code, day, activity, outcome, who) for code in codes]
        session.add(Attendance(activity_id=activity_id, person_id=person.id, outcome=outcome,
                               entry_ids=[e.id for e in entries]))
        result.outcomes[person.id] = outcome
        result.entries.extend(entries)
        deducted = [e for e in entries if e.points < 0]
        if deducted and notices.send_to_person(
            session=session, person=person, kind="attendance-deduction",
            key=f"activity-{activity_id}", notice=_deduction_notice(session, activity, tz,
                                                                    outcome, deducted),
        ):
            result.notified += 1
    session.flush()
    # The group post is queued in this transaction, so it exists exactly when attendance does.
    queue_attendance_summary(session=session, activity=activity, outcomes=result.outcomes)
    audit.record(session=session, actor_id=who.person_id, actor_label=who.label,
                 action="finalize", entity="activity", entity_id=activity_id,
                 after={o.value: result.count(o) for o in Outcome}
                 | {"entries": len(result.entries)})
    return result


def _attendance_rules(session: Session, person: Person, day: date) -> AttendanceRules | None:
    org = session.get(Organization, person.organization_id)
    assert org is not None
    version = schemes.version_for(session=session, org=org, period=month_key_of(day))
    return schemes.scheme_of(version).attendance if version is not None else None


def _record(session: Session, person: Person, code: str, day: date, activity: Activity,
            outcome: Outcome, actor: Actor) -> LedgerEntry:
    org = session.get(Organization, person.organization_id)
    assert org is not None
    period = first_open_period(session=session, org=org, start=month_key_of(day))
    # A closed month is never written again: the entry lands in the first open month.
    occurred = day if period == month_key_of(day) else date(*parse_month(period), 1)
    assert person.id is not None
    return record_entry(
        session=session, member_id=person.id, indicator_code=code, occurred_on=occurred,
        reason=f"{activity.kind}「{activity.title}」{outcome.label}", actor=actor,
        source=EntrySource.AUTOMATIC)


def _deduction_notice(session: Session, activity: Activity, tz: ZoneInfo, outcome: Outcome,
                      entries: list[LedgerEntry]) -> notices.Notice:
    when = activity.starts_at.astimezone(tz)
    items = "、".join(
        f"{indicator_name(session=session, entry=e)} {e.points}分" for e in entries)
    return notices.Notice(
        f"{when.month}月{when.day}日的{activity.kind}「{activity.title}」考勤已确认：您{outcome.label}，"
        f"按积分方案记 {items}。如有异议，请联系支部书记。",
        title="考勤结果")


def due_for_final(*, session: Session, now: datetime) -> list[int]:
    """Activities whose check-in window has passed but whose attendance is not yet final."""
    return list(session.exec(
        select(Activity.id).where(
            Activity.checkin_closes_at < now,
            col(Activity.status).not_in([ActivityStatus.FINAL, ActivityStatus.CANCELLED]))
        .order_by(col(Activity.id))))


def attendance_of(*, session: Session, activity_id: int) -> list[tuple[Attendance, Person]]:
    """The final attendance of an activity, by person."""
    return list(session.exec(
        select(Attendance, Person).join(Person, col(Person.id) == Attendance.person_id)
        .where(Attendance.activity_id == activity_id).order_by(col(Person.id))).all())


def finalize_due(*, engine: Engine, now: datetime, tz: ZoneInfo) -> int:
    """Make final every activity whose window has passed, each in its own transaction."""
    with read_session(engine) as session:
        due = due_for_final(session=session, now=now)
    done = 0
    for activity_id in due:
        try:
            with write_session(engine) as session:
                done += finalize(session=session, activity_id=activity_id, now=now,
                                 tz=tz).changed
        except (ActivityError, LedgerError) as exc:
            log.warning("attendance of activity %s not made final: %s", activity_id, exc)
    return done
