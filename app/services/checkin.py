"""Checking in to an activity: by scanning the room's rotating QR code, or marked by hand."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, bindparam, text
from sqlmodel import Session, col, func, select

from app.db import UTCDateTime
from app.domain.checkin import (
    TokenError,
    TokenExpired,
    WindowState,
    distance_m,
    is_late,
    make_token,
    read_token,
    window_index,
    window_state,
)
from app.domain.refusals import Refusal
from app.domain.vocab import MemberType
from app.models import (
    Activity,
    ActivityStatus,
    AttendeeOverride,
    CheckIn,
    CheckInMethod,
    Organization,
    Person,
)
from app.services import audit
from app.services.activities import (
    ActivityError,
    branch_paths,
    expected_attendees,
    is_expected,
    managed_activity,
    status_at,
    under_any,
)


class CheckInRefused(ActivityError):
    """A check-in was refused; `code` says why for programs, the message says it for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CheckInResult:
    """A check-in, and whether this call made it (False: the person had already checked in)."""

    activity: Activity
    check_in: CheckIn
    created: bool


@dataclass(frozen=True)
class LiveCount:
    """What the room screen shows: how many of those expected are in, and the latest names."""

    expected: int
    checked_in: int
    visitors: int
    latest: list[str]


def current_token(*, secret: str, activity_id: int, now: datetime, rotate_s: int) -> str:
    """The token the room screen shows now."""
    return make_token(secret=secret, activity_id=activity_id,
                      window=window_index(now, rotate_s))


@dataclass(frozen=True)
class _Facts:
    """What a scan needs to know about an activity, as of one data version."""

    activity: Activity
    branch_paths: tuple[str, ...]
    overrides: dict[int, bool]
    org_paths: dict[int, str]

    def expects(self, person: Person) -> bool:
        wanted = self.overrides.get(person.id or 0)
        if wanted is not None:
            return wanted
        path = self.org_paths.get(person.organization_id, "")
        return (person.active and person.member_type != MemberType.masses
                and any(path.startswith(p) for p in self.branch_paths))


# Scans are the hot path of a meeting: the activity, its branches, overrides and the org tree are
# read once per data version (every audited change moves it), not once per scan.
_FACTS_KEEP = 64
_facts_cache: dict[tuple[str, int, int], _Facts] = {}
_facts_lock = threading.Lock()


def _facts(session: Session, activity_id: int) -> _Facts | None:
    key = (str(session.get_bind().url), activity_id, audit.data_version(session))
    with _facts_lock:
        found = _facts_cache.get(key)
    if found is not None:
        return found
    activity = session.get(Activity, activity_id)
    if activity is None:
        return None
    paths = tuple(branch_paths(session=session, activity=activity))
    overrides = {o.person_id: o.expected for o in session.exec(
        select(AttendeeOverride).where(AttendeeOverride.activity_id == activity_id))}
    org_paths = {org_id: path for org_id, path in session.exec(
        select(Organization.id, Organization.path).where(under_any(paths)))}
    session.expunge(activity)
    facts = _Facts(activity, paths, overrides, org_paths)
    with _facts_lock:
        if len(_facts_cache) >= _FACTS_KEEP:
            _facts_cache.clear()
        _facts_cache[key] = facts
    return facts


def check_in(
    *, session: Session, person: Person, token: str, now: datetime, secret: str,
    rotate_s: int, platform: str = "", position: tuple[float, float] | None = None,
) -> CheckInResult:
    """Check the person in with a scanned token; a repeat returns the first check-in."""
    try:
        activity_id = read_token(secret=secret, token=token,
                                 current_window=window_index(now, rotate_s))
    except TokenExpired as exc:
        raise CheckInRefused("expired", str(exc)) from None
    except TokenError as exc:
        raise CheckInRefused("invalid", str(exc)) from None
    facts = _facts(session, activity_id)
    if facts is None:
        raise CheckInRefused("invalid", "找不到该活动，请扫描会场屏幕上的签到码")
    activity = facts.activity
    try:
        _check_window(activity, now)
    except CheckInRefused:
        existing = _existing(session, activity_id, person.id)
        if existing is not None:  # scanning again after the window: still just "already in"
            return CheckInResult(activity, existing, created=False)
        raise
    visitor = not facts.expects(person)
    if visitor and not activity.allow_visitors:
        raise CheckInRefused("not_expected",
                             "您不在本次活动的应到人员名单中，如有疑问请联系支部书记")
    distance = _check_geofence(activity, position)
    late = is_late(checked_in_at=now, starts_at=activity.starts_at,
                   late_after_min=activity.late_after_min)
    row = _insert(session, dict(activity_id=activity_id, person_id=person.id, checked_in_at=now,
                                late=late, visitor=visitor, method=CheckInMethod.SCAN.value,
                                platform=platform, distance_m=distance, reason=""))
    if row is None:
        existing = _existing(session, activity_id, person.id)
        if existing is not None:  # a repeat, or a concurrent scan that won the race
            return CheckInResult(activity, existing, created=False)
        # The activity was closed, cancelled or made final after the facts were read.
        fresh = session.get(Activity, activity_id)
        assert fresh is not None
        _check_window(fresh, now)
        raise CheckInRefused("closed", "签到已结束")
    return CheckInResult(activity, row, created=True)


def _existing(session: Session, activity_id: int, person_id: int | None) -> CheckIn | None:
    return session.exec(select(CheckIn).where(CheckIn.activity_id == activity_id,
                                              CheckIn.person_id == person_id)).first()


def _check_window(activity: Activity, now: datetime) -> None:
    stored = ActivityStatus(activity.status)
    if stored is ActivityStatus.CANCELLED:
        raise CheckInRefused("cancelled", "该活动已取消")
    if stored in (ActivityStatus.FINAL, ActivityStatus.CLOSED):
        raise CheckInRefused("closed", "签到已结束")
    state = window_state(now=now, opens_at=activity.checkin_opens_at,
                         closes_at=activity.checkin_closes_at)
    if state is WindowState.NOT_OPEN:
        raise CheckInRefused("not_open", "签到尚未开始，请在签到开放后再扫码")
    if state is WindowState.CLOSED:
        raise CheckInRefused("closed", "签到已结束")


def _check_geofence(activity: Activity, position: tuple[float, float] | None) -> int | None:
    if activity.geo_radius_m is None or activity.geo_lat is None or activity.geo_lng is None:
        return None
    if position is None:
        raise CheckInRefused("position_required", "本次活动需要现场签到，请允许获取位置后重新扫码")
    distance = round(distance_m(activity.geo_lat, activity.geo_lng, *position))
    if distance > activity.geo_radius_m:
        raise CheckInRefused("outside", f"您不在签到范围内（距会场约 {distance} 米，"
                             f"需在 {activity.geo_radius_m} 米以内）")
    return distance


# Written out once: SQLAlchemy 2.0's dialect insert() (ON CONFLICT) has no cache key
# (sqlalchemy#10445), so the construct was compiled again on every scan. The same text works on
# PostgreSQL and SQLite >= 3.35 (the WHERE also settles SQLite's INSERT ... SELECT ON CONFLICT
# parsing ambiguity).
_SCAN_INSERT = text(
    "INSERT INTO check_in (activity_id, person_id, checked_in_at, late, visitor, method, "
    "platform, distance_m, reason) "
    "SELECT :activity_id, :person_id, :checked_in_at, :late, :visitor, :method, :platform, "
    "CAST(:distance_m AS INTEGER), :reason "
    "WHERE EXISTS (SELECT 1 FROM activity WHERE activity.id = :activity_id "
    "AND activity.status IN (:planned, :open)) "
    "ON CONFLICT (activity_id, person_id) DO NOTHING RETURNING id"
).bindparams(bindparam("checked_in_at", type_=UTCDateTime()),
             bindparam("late", type_=Boolean()), bindparam("visitor", type_=Boolean()))


def _insert(session: Session, values: dict[str, object]) -> CheckIn | None:
    """Insert a check-in unless one exists or the activity stopped taking them (one statement,
    so a scan racing a close or finalize cannot slip in after it)."""
    new_id = session.execute(_SCAN_INSERT, {
        **values, "planned": ActivityStatus.PLANNED.value, "open": ActivityStatus.OPEN.value,
    }).scalar()
    return None if new_id is None else CheckIn(id=new_id, **values)


def mark_present(
    *, session: Session, activity_id: int, person_id: int, actor: Person, reason: str,
    now: datetime,
) -> CheckInResult:
    """A secretary records someone as present after the fact, with a reason (audited)."""
    activity = managed_activity(session=session, activity_id=activity_id, person=actor)
    state = status_at(activity, now)
    if state in (ActivityStatus.FINAL, ActivityStatus.CANCELLED):
        raise ActivityError(f"活动{state.label}，不能再补登签到", kind=Refusal.conflict)
    if person_id == actor.id:
        raise ActivityError("不能为自己补登签到，请由其他支委或上级组织办理",
                            kind=Refusal.forbidden)
    if not reason.strip():
        raise ActivityError("补登签到请写明原因，例如：现场签到时手机没电")
    person = session.get(Person, person_id)
    if person is None or not is_expected(session=session, activity=activity, person=person):
        raise ActivityError("该人员不在本次活动的应到人员名单中")
    existing = _existing(session, activity_id, person_id)
    if existing is not None:
        return CheckInResult(activity, existing, created=False)
    row = CheckIn(activity_id=activity_id, person_id=person_id, checked_in_at=now,
                  method=CheckInMethod.MANUAL, marked_by_id=actor.id, reason=reason.strip())
    session.add(row)
    session.flush()
    audit.record(session=session, actor_id=actor.id, actor_label=actor.name, action="mark_present",
                 entity="check_in", entity_id=row.id,
                 after={"activity_id": activity_id, "person_id": person_id,
                        "reason": row.reason})
    return CheckInResult(activity, row, created=True)


def check_ins(*, session: Session, activity_id: int) -> list[tuple[CheckIn, Person]]:
    """Every check-in of an activity with the person, in the order they came."""
    return list(session.exec(
        select(CheckIn, Person).join(Person, col(Person.id) == CheckIn.person_id)
        .where(CheckIn.activity_id == activity_id).order_by(col(CheckIn.checked_in_at))
    ).all())


def live_count(*, session: Session, activity: Activity, latest: int = 8) -> LiveCount:
    """Checked-in against expected, and the latest names, for the room screen."""
    expected = {p.id for p in expected_attendees(session=session, activity=activity)}
    rows = session.exec(
        select(CheckIn.person_id, Person.name, CheckIn.visitor)
        .join(Person, col(Person.id) == CheckIn.person_id)
        .where(CheckIn.activity_id == activity.id)
        .order_by(col(CheckIn.checked_in_at).desc(), col(CheckIn.id).desc())
    ).all()
    inside = sum(1 for pid, _, _ in rows if pid in expected)
    visitors = sum(1 for _, _, visitor in rows if visitor)
    return LiveCount(len(expected), inside, visitors, [name for _, name, _ in rows[:latest]])


def count_check_ins(*, session: Session, activity_id: int) -> int:
    """How many check-ins an activity has (for tests and benchmarks)."""
    return session.exec(select(func.count()).select_from(CheckIn)
                        .where(CheckIn.activity_id == activity_id)).one()
