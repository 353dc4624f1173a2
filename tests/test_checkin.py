"""Checking in on the real database: tokens, windows, visitors, geofence, manual marks, counts,
expected attendees, leave deadlines, and 50 simultaneous scans of one person."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from app.db import write_session
from app.domain.checkin import EXPIRED_MESSAGE, INVALID_MESSAGE, distance_m, window_index
from app.domain.vocab import Role
from app.models import (
    Activity,
    AuditLog,
    CheckIn,
    CheckInMethod,
    LeaveRequest,
    Organization,
    Person,
    RoleAssignment,
)
from app.services.activities import (
    ActivityError,
    Geofence,
    cancel_activity,
    close_checkin,
    create_activity,
    expected_attendees,
    is_expected,
    request_leave,
    set_expected,
)
from app.services.checkin import (
    CheckInRefused,
    check_in,
    count_check_ins,
    current_token,
    live_count,
    mark_present,
)
from tests.factories import build_org

SECRET = "test-checkin-secret"
ROTATE = 20
START = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)  # 14:30 in Beijing
TIANANMEN = (39.9087, 116.3975)
METRES_PER_DEGREE = 111_195.08


def at(minutes: float) -> datetime:
    """`minutes` after the start (negative: before)."""
    return START + timedelta(minutes=minutes)


@pytest.fixture
def org(db):
    with write_session(db) as s:
        built = build_org(s, branches=2, members=4)
        b1, b2 = built.branches
        return {
            "committee": built.committee.id,
            "b1": b1.id,
            "b2": b2.id,
            "one": [p.id for p in built.members[b1.id]],
            "two": [p.id for p in built.members[b2.id]],
        }


def new_activity(db, org, *, branch="b1", also=(), by_secretary=True, **kwargs) -> int:
    """An activity planned by the branch secretary (or by the system, by_secretary=False)."""
    with write_session(db) as s:
        secretary = s.get(Person, org["one" if branch == "b1" else "two"][0])
        activity = create_activity(
            session=s,
            branch=s.get(Organization, org[branch]),
            kind="主题党日",
            title="十一月主题党日",
            starts_at=START,
            creator=secretary if by_secretary else None,
            also_branches=[s.get(Organization, org[b]) for b in also],
            **kwargs,
        )
        return activity.id


def token_for(activity_id: int, now: datetime) -> str:
    return current_token(secret=SECRET, activity_id=activity_id, now=now, rotate_s=ROTATE)


def scan(
    db, activity_id: int, person_id: int, now: datetime, *, token: str | None = None, **kwargs
):
    with write_session(db) as s:
        return check_in(
            session=s,
            person=s.get(Person, person_id),
            token=token_for(activity_id, now) if token is None else token,
            now=now,
            secret=SECRET,
            rotate_s=ROTATE,
            **kwargs,
        )


def refused(db, activity_id, person_id, now, **kwargs) -> CheckInRefused:
    with pytest.raises(CheckInRefused) as caught:
        scan(db, activity_id, person_id, now, **kwargs)
    return caught.value


def rows(db, activity_id) -> list[CheckIn]:
    with write_session(db) as s:
        return list(
            s.exec(select(CheckIn).where(CheckIn.activity_id == activity_id).order_by(CheckIn.id))
        )


# --- scanning ---------------------------------------------------------------------------------


def test_create_activity_sets_the_default_window_late_threshold_and_leave_deadline(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        a = s.get(Activity, activity_id)
        assert (a.checkin_opens_at, a.ends_at, a.checkin_closes_at) == (at(-30), at(120), at(150))
        assert (a.late_after_min, a.leave_deadline_at, a.status) == (10, START, "planned")
        assert (a.allow_visitors, a.geo_radius_m) == (False, None)


def test_a_scan_inside_the_window_records_on_time_or_late(db, org):
    activity_id = new_activity(db, org)
    early, on_time, boundary, late = org["one"]
    results = {
        early: scan(db, activity_id, early, at(-25), platform="dingtalk"),
        on_time: scan(db, activity_id, on_time, at(5)),
        boundary: scan(db, activity_id, boundary, at(10)),
        late: scan(db, activity_id, late, at(10) + timedelta(seconds=1)),
    }
    assert all(r.created for r in results.values())
    stored = {c.person_id: c for c in rows(db, activity_id)}
    assert {pid: c.late for pid, c in stored.items()} == {
        early: False,
        on_time: False,
        boundary: False,
        late: True,
    }
    assert stored[early].checked_in_at == at(-25)
    assert stored[early].platform == "dingtalk"
    assert {c.method for c in stored.values()} == {CheckInMethod.SCAN}
    assert not any(c.visitor for c in stored.values())
    assert all(c.distance_m is None for c in stored.values())


def test_a_late_threshold_of_the_activity_is_used(db, org):
    activity_id = new_activity(db, org, late_after_min=0)
    assert scan(db, activity_id, org["one"][1], at(0)).check_in.late is False
    assert scan(db, activity_id, org["one"][2], at(0.5)).check_in.late is True


def test_a_repeat_scan_returns_the_first_check_in(db, org):
    activity_id = new_activity(db, org)
    member = org["one"][1]
    first = scan(db, activity_id, member, at(2))
    again = scan(db, activity_id, member, at(30))
    assert (first.created, again.created) == (True, False)
    assert again.check_in.id == first.check_in.id
    assert again.check_in.checked_in_at == at(2)
    assert again.check_in.late is False
    # Even after the window has closed, a repeat is answered with the first check-in.
    after = scan(db, activity_id, member, at(200))
    assert (after.created, after.check_in.id) == (False, first.check_in.id)
    assert len(rows(db, activity_id)) == 1


def test_a_token_two_windows_old_is_refused_as_expired(db, org):
    activity_id = new_activity(db, org)
    shown = at(1)
    token = token_for(activity_id, shown)
    member = org["one"][1]
    accepted_until = shown + timedelta(seconds=ROTATE)
    assert window_index(accepted_until, ROTATE) == window_index(shown, ROTATE) + 1
    error = refused(db, activity_id, member, shown + timedelta(seconds=2 * ROTATE), token=token)
    assert (error.code, str(error)) == ("expired", EXPIRED_MESSAGE)
    assert rows(db, activity_id) == []
    assert scan(db, activity_id, member, accepted_until, token=token).created


@pytest.mark.parametrize("token", ["", "hello", "1.2.3", "https://example.com/x", "99999.1.abc"])
def test_a_bad_token_is_refused_as_invalid(db, org, token):
    activity_id = new_activity(db, org)
    error = refused(db, activity_id, org["one"][1], at(1), token=token)
    assert (error.code, str(error)) == ("invalid", INVALID_MESSAGE)


def test_a_token_for_an_activity_that_does_not_exist_is_invalid(db, org):
    activity_id = new_activity(db, org)
    error = refused(
        db, activity_id, org["one"][1], at(1), token=token_for(activity_id + 100, at(1))
    )
    assert error.code == "invalid"
    assert "找不到该活动" in str(error)


@pytest.mark.parametrize(
    "token", ["².1.abc", "1" * 5000 + ".1.abc"], ids=["superscript", "huge-number"]
)
def test_a_digit_lookalike_token_is_refused_as_invalid_not_a_crash(db, org, token):
    # BUG (app/domain/checkin.py read_token): int() raises a bare ValueError on these, which
    # escapes check_in() instead of CheckInRefused("invalid").
    activity_id = new_activity(db, org)
    error = refused(db, activity_id, org["one"][1], at(1), token=token)
    assert error.code == "invalid"


def test_scans_before_the_window_opens_or_after_it_closes_are_refused(db, org):
    activity_id = new_activity(db, org)
    member = org["one"][1]
    error = refused(db, activity_id, member, at(-30) - timedelta(seconds=1))
    assert (error.code, str(error)) == ("not_open", "签到尚未开始，请在签到开放后再扫码")
    error = refused(db, activity_id, member, at(150) + timedelta(seconds=1))
    assert (error.code, str(error)) == ("closed", "签到已结束")
    assert scan(db, activity_id, member, at(-30)).created  # the opening instant counts


def test_check_in_closed_early_by_the_secretary_refuses_scans(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        close_checkin(
            session=s, activity_id=activity_id, actor=s.get(Person, org["one"][0]), now=at(60)
        )
    assert refused(db, activity_id, org["one"][1], at(61)).code == "closed"


def test_a_cancelled_activity_refuses_scans(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        cancel_activity(
            session=s,
            activity_id=activity_id,
            actor=s.get(Person, org["one"][0]),
            reason="场地临时占用",
            now=at(-60),
        )
    error = refused(db, activity_id, org["one"][1], at(1))
    assert (error.code, str(error)) == ("cancelled", "该活动已取消")


def test_a_member_of_another_branch_is_refused_unless_visitors_are_allowed(db, org):
    closed_id = new_activity(db, org)
    outsider = org["two"][1]
    error = refused(db, closed_id, outsider, at(1))
    assert error.code == "not_expected"
    assert "应到人员名单" in str(error)
    assert rows(db, closed_id) == []

    open_id = new_activity(db, org, allow_visitors=True)
    result = scan(db, open_id, outsider, at(1))
    assert result.created and result.check_in.visitor is True
    member = scan(db, open_id, org["one"][1], at(2))
    assert member.check_in.visitor is False


def test_geofence_requires_a_position_inside_the_radius(db, org):
    activity_id = new_activity(db, org, geofence=Geofence(*TIANANMEN, radius_m=200))
    member = org["one"][1]
    error = refused(db, activity_id, member, at(1))
    assert error.code == "position_required"

    lat, lng = TIANANMEN
    far = (lat + 1000 / METRES_PER_DEGREE, lng)
    expected_far = round(distance_m(*TIANANMEN, *far))
    assert 990 <= expected_far <= 1010
    error = refused(db, activity_id, member, at(1), position=far)
    assert error.code == "outside"
    assert str(error) == f"您不在签到范围内（距会场约 {expected_far} 米，需在 200 米以内）"
    assert rows(db, activity_id) == []

    near = (lat + 50 / METRES_PER_DEGREE, lng)
    result = scan(db, activity_id, member, at(2), position=near)
    assert result.created
    assert result.check_in.distance_m == 50
    assert [c.distance_m for c in rows(db, activity_id)] == [50]


def test_geofence_edge_counts_as_inside(db, org):
    activity_id = new_activity(db, org, geofence=Geofence(*TIANANMEN, radius_m=200))
    lat, lng = TIANANMEN
    edge = (lat + 200 / METRES_PER_DEGREE, lng)
    assert round(distance_m(*TIANANMEN, *edge)) == 200
    assert scan(db, activity_id, org["one"][1], at(1), position=edge).check_in.distance_m == 200


def test_an_invalid_geofence_is_refused_at_creation(db, org):
    with pytest.raises(ActivityError, match="签到范围无效"):
        new_activity(db, org, geofence=Geofence(91, 0, radius_m=100))
    with pytest.raises(ActivityError, match="签到范围无效"):
        new_activity(db, org, geofence=Geofence(*TIANANMEN, radius_m=0))


# --- marking present by hand ------------------------------------------------------------------


def test_the_secretary_marks_someone_present_with_a_reason_and_it_is_audited(db, org):
    activity_id = new_activity(db, org)
    secretary, member = org["one"][0], org["one"][2]
    with write_session(db) as s:
        actor = s.get(Person, secretary)
        with pytest.raises(ActivityError, match="写明原因"):
            mark_present(
                session=s,
                activity_id=activity_id,
                person_id=member,
                actor=actor,
                reason="   ",
                now=at(40),
            )
    with write_session(db) as s:
        result = mark_present(
            session=s,
            activity_id=activity_id,
            person_id=member,
            actor=s.get(Person, secretary),
            reason=" 手机没电 ",
            now=at(40),
        )
        assert result.created
        row_id = result.check_in.id
    (row,) = rows(db, activity_id)
    assert (row.id, row.person_id, row.method, row.marked_by_id, row.reason) == (
        row_id,
        member,
        CheckInMethod.MANUAL,
        secretary,
        "手机没电",
    )
    assert row.checked_in_at == at(40)
    with write_session(db) as s:
        logs = s.exec(select(AuditLog).where(AuditLog.action == "mark_present")).all()
    assert len(logs) == 1
    (log,) = logs
    assert (log.actor_id, log.entity, log.entity_id) == (secretary, "check_in", str(row_id))
    assert log.after == {"activity_id": activity_id, "person_id": member, "reason": "手机没电"}

    with write_session(db) as s:
        again = mark_present(
            session=s,
            activity_id=activity_id,
            person_id=member,
            actor=s.get(Person, secretary),
            reason="再补一次",
            now=at(50),
        )
        assert (again.created, again.check_in.id) == (False, row_id)
    with write_session(db) as s:
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "mark_present")).all()) == 1


def test_only_a_secretary_of_the_branch_may_mark_present(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        for actor in (org["one"][1], org["two"][0]):  # a plain member; another branch's secretary
            with pytest.raises(ActivityError, match="只有该支部的书记"):
                mark_present(
                    session=s,
                    activity_id=activity_id,
                    person_id=org["one"][2],
                    actor=s.get(Person, actor),
                    reason="补登",
                    now=at(40),
                )
    assert rows(db, activity_id) == []


def test_mark_present_refuses_people_not_expected_and_cancelled_activities(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        secretary = s.get(Person, org["one"][0])
        with pytest.raises(ActivityError, match="不在本次活动的应到人员名单"):
            mark_present(
                session=s,
                activity_id=activity_id,
                person_id=org["two"][1],
                actor=secretary,
                reason="补登",
                now=at(40),
            )
        cancel_activity(
            session=s, activity_id=activity_id, actor=secretary, reason="改期", now=at(-60)
        )
        with pytest.raises(ActivityError, match="已取消"):
            mark_present(
                session=s,
                activity_id=activity_id,
                person_id=org["one"][1],
                actor=secretary,
                reason="补登",
                now=at(40),
            )


# --- the room screen and expected attendees ---------------------------------------------------


def test_live_count_counts_expected_check_ins_visitors_and_latest_names(db, org):
    activity_id = new_activity(db, org, allow_visitors=True)
    scan(db, activity_id, org["one"][1], at(-10))
    scan(db, activity_id, org["one"][3], at(-5))
    scan(db, activity_id, org["two"][2], at(-1))  # a visitor
    with write_session(db) as s:
        activity = s.get(Activity, activity_id)
        count = live_count(session=s, activity=activity)
        names = {pid: s.get(Person, pid).name for pid in (*org["one"], *org["two"])}
        short = live_count(session=s, activity=activity, latest=2)
        assert count_check_ins(session=s, activity_id=activity_id) == 3
    assert (count.expected, count.checked_in, count.visitors) == (4, 2, 1)
    assert count.latest == [names[org["two"][2]], names[org["one"][3]], names[org["one"][1]]]
    assert short.latest == count.latest[:2]


def test_expected_attendees_follow_the_secretarys_additions_and_removals(db, org):
    activity_id = new_activity(db, org)
    added, removed = org["two"][3], org["one"][2]
    with write_session(db) as s:
        activity = s.get(Activity, activity_id)
        assert [p.id for p in expected_attendees(session=s, activity=activity)] == org["one"]
        secretary = s.get(Person, org["one"][0])
        with pytest.raises(ActivityError, match="只能添加您所管理组织中的人员"):
            set_expected(
                session=s, activity_id=activity_id, person_id=added, expected=True,
                actor=secretary)
        # A guest from a sibling branch is added by someone who manages both (committee staff).
        s.add(RoleAssignment(person_id=secretary.id, role=Role.committee_staff,
                             organization_id=org["committee"]))
        s.flush()
        set_expected(
            session=s, activity_id=activity_id, person_id=added, expected=True, actor=secretary
        )
        set_expected(
            session=s, activity_id=activity_id, person_id=removed, expected=False, actor=secretary
        )
        ids = [p.id for p in expected_attendees(session=s, activity=activity)]
        assert ids == sorted([*(p for p in org["one"] if p != removed), added])
        assert is_expected(session=s, activity=activity, person=s.get(Person, added))
        assert not is_expected(session=s, activity=activity, person=s.get(Person, removed))
        actions = [
            (a.action, a.after["person_id"])
            for a in s.exec(
                select(AuditLog)
                .where(
                    AuditLog.entity == "activity",
                    AuditLog.entity_id == str(activity_id),
                    AuditLog.action.in_(["include", "exclude"]),
                )
                .order_by(AuditLog.id)
            )
        ]
        assert actions == [("include", added), ("exclude", removed)]
    # The added person may now scan; the removed one is refused.
    assert scan(db, activity_id, added, at(1)).check_in.visitor is False
    assert refused(db, activity_id, removed, at(1)).code == "not_expected"
    with write_session(db) as s:
        count = live_count(session=s, activity=s.get(Activity, activity_id))
    assert (count.expected, count.checked_in, count.visitors) == (4, 1, 0)


def test_set_expected_needs_a_secretary_and_an_existing_person(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        with pytest.raises(ActivityError, match="只有该支部的书记"):
            set_expected(
                session=s,
                activity_id=activity_id,
                person_id=org["two"][1],
                expected=True,
                actor=s.get(Person, org["one"][1]),
            )
        with pytest.raises(ActivityError, match="找不到该人员"):
            set_expected(
                session=s,
                activity_id=activity_id,
                person_id=999_999,
                expected=True,
                actor=s.get(Person, org["one"][0]),
            )


def test_an_activity_for_two_branches_expects_both_branches_members(db, org):
    activity_id = new_activity(db, org, also=("b2",), by_secretary=False)
    with write_session(db) as s:
        activity = s.get(Activity, activity_id)
        ids = [p.id for p in expected_attendees(session=s, activity=activity)]
    assert ids == sorted(org["one"] + org["two"])
    result = scan(db, activity_id, org["two"][1], at(1))
    assert result.created and result.check_in.visitor is False
    with write_session(db) as s:
        count = live_count(session=s, activity=s.get(Activity, activity_id))
    assert (count.expected, count.checked_in) == (8, 1)


def test_only_a_secretary_of_every_branch_may_plan_a_joint_activity(db, org):
    with pytest.raises(ActivityError, match="您不能为“第2党支部”发起活动"):
        new_activity(db, org, also=("b2",), branch="b1")
    with write_session(db) as s:
        assert s.exec(select(Activity)).all() == []


# --- leave ------------------------------------------------------------------------------------


def ask_leave(db, activity_id, person_id, now, kind="病假"):
    with write_session(db) as s:
        return request_leave(
            session=s,
            person=s.get(Person, person_id),
            activity_id=activity_id,
            kind=kind,
            reason="身体不适",
            now=now,
        )


def test_leave_is_refused_after_the_deadline_and_after_the_start(db, org):
    activity_id = new_activity(db, org, leave_deadline_at=at(-120))
    with pytest.raises(ActivityError, match="已过请假截止时间"):
        ask_leave(db, activity_id, org["one"][1], at(-120))
    with pytest.raises(ActivityError, match="活动已经开始"):
        ask_leave(db, activity_id, org["one"][1], at(0))
    leave = ask_leave(db, activity_id, org["one"][2], at(-121))
    assert (leave.kind, leave.status, leave.reason) == ("sick", "pending", "身体不适")
    with pytest.raises(ActivityError, match=f"已为该活动请过假（编号 Q{leave.id}，待审批）"):
        ask_leave(db, activity_id, org["one"][2], at(-125), kind="事假")


def test_by_default_leave_closes_at_the_start(db, org):
    activity_id = new_activity(db, org)
    assert ask_leave(db, activity_id, org["one"][1], at(-1)).id is not None
    with pytest.raises(ActivityError, match="活动已经开始"):
        ask_leave(db, activity_id, org["one"][2], at(0))


def test_leave_is_refused_for_a_cancelled_activity_and_for_outsiders(db, org):
    activity_id = new_activity(db, org)
    with pytest.raises(ActivityError, match="找不到活动"):
        ask_leave(db, activity_id, org["two"][1], at(-60))
    with pytest.raises(ActivityError, match="请假类型应为"):
        ask_leave(db, activity_id, org["one"][1], at(-60), kind="婚假")
    with write_session(db) as s:
        cancel_activity(
            session=s,
            activity_id=activity_id,
            actor=s.get(Person, org["one"][0]),
            reason="改期",
            now=at(-90),
        )
    with pytest.raises(ActivityError, match="该活动已取消，无需请假"):
        ask_leave(db, activity_id, org["one"][1], at(-60))
    with write_session(db) as s:
        assert s.exec(select(LeaveRequest)).all() == []


# --- concurrency ------------------------------------------------------------------------------


def test_fifty_simultaneous_scans_of_one_person_make_one_check_in(db, org):
    activity_id = new_activity(db, org)
    member = org["one"][1]
    now = at(3)
    token = token_for(activity_id, now)
    threads = 50
    barrier = threading.Barrier(threads)

    def one_scan(_: int) -> tuple[bool, int]:
        barrier.wait(timeout=60)
        result = scan(db, activity_id, member, now, token=token)
        return result.created, result.check_in.id

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(one_scan, i) for i in range(threads)]
        outcomes = [f.result(timeout=120) for f in futures]  # re-raises any failure

    assert len(outcomes) == threads
    assert sorted(created for created, _ in outcomes) == [False] * (threads - 1) + [True]
    stored = rows(db, activity_id)
    assert len(stored) == 1
    assert {row_id for _, row_id in outcomes} == {stored[0].id}
    assert (stored[0].person_id, stored[0].checked_in_at, stored[0].late) == (member, now, False)
