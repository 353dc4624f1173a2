"""Making attendance final on the real database: outcomes, ledger entries, deduction notices,
closed months, idempotence under concurrency; and the outbox the notices go through."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import func, select

from app.db import write_session
from app.domain.checkin import Outcome
from app.domain.vocab import MemberType
from app.models import (
    Activity,
    Attendance,
    AuditLog,
    LedgerEntry,
    Organization,
    OutboxMessage,
    OutboxStatus,
    Person,
)
from app.services import outbox
from app.services.activities import (
    ActivityError,
    cancel_activity,
    create_activity,
    decide_leave,
    pending_leaves,
    request_leave,
    set_expected,
)
from app.services.attendance import attendance_of, due_for_final, finalize, finalize_due
from app.services.checkin import check_in, current_token, mark_present
from app.services.month_close import close_month
from tests.factories import build_org

SECRET = "test-attendance-secret"
ROTATE = 20
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)  # 14:30 on 25 November in Beijing
AFTER = START + timedelta(hours=3)  # the default window closes at START + 2 h 30 min


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.fixture
def org(db):
    with write_session(db) as s:
        built = build_org(s, branches=2, members=6)
        b1, b2 = built.branches
        return {
            "committee": built.committee.id,
            "b1": b1.id,
            "one": [p.id for p in built.members[b1.id]],
            "two": [p.id for p in built.members[b2.id]],
            "userid": {p.id: p.dingtalk_userid for p in built.everyone()},
        }


def new_activity(db, org, *, starts_at=START, **kwargs) -> int:
    with write_session(db) as s:
        return create_activity(
            session=s,
            branch=s.get(Organization, org["b1"]),
            kind="支部党员大会",
            title="第四季度党员大会",
            starts_at=starts_at,
            creator=s.get(Person, org["one"][0]),
            **kwargs,
        ).id


def scan(db, activity_id, person_id, now):
    with write_session(db) as s:
        return check_in(
            session=s,
            person=s.get(Person, person_id),
            token=current_token(secret=SECRET, activity_id=activity_id, now=now, rotate_s=ROTATE),
            now=now,
            secret=SECRET,
            rotate_s=ROTATE,
        )


def leave(db, org, activity_id, person_id, *, approve, kind="病假"):
    with write_session(db) as s:
        asked = request_leave(
            session=s,
            person=s.get(Person, person_id),
            activity_id=activity_id,
            kind=kind,
            reason="出差",
            now=at(-600),
        )
        decide_leave(
            session=s,
            leave_id=asked.id,
            decider=s.get(Person, org["one"][0]),
            approve=approve,
            reason="" if approve else "全员参加",
            now=at(-500),
        )


def run_finalize(db, activity_id, *, now=AFTER, actor_id=None):
    with write_session(db) as s:
        actor = s.get(Person, actor_id) if actor_id is not None else None
        result = finalize(session=s, activity_id=activity_id, now=now, tz=TZ, actor=actor)
        return result.changed, dict(result.outcomes), len(result.entries), result.notified


def counts(db) -> tuple[int, int, int]:
    with write_session(db) as s:
        return tuple(
            s.exec(select(func.count()).select_from(model)).one()
            for model in (LedgerEntry, Attendance, OutboxMessage)
        )


def entries_by_person(db) -> dict[int, list[LedgerEntry]]:
    found: dict[int, list[LedgerEntry]] = {}
    with write_session(db) as s:
        for e in s.exec(select(LedgerEntry).order_by(LedgerEntry.id)):
            found.setdefault(e.person_id, []).append(e)
    return found


def deduction_rows(db) -> list[OutboxMessage]:
    with write_session(db) as s:
        return outbox.messages(session=s, kind="attendance-deduction")


@pytest.fixture
def meeting(db, org):
    """An activity with one of each: present, late, approved leave, rejected leave, no-show,
    approved leave but came anyway, and a visitor from the other branch."""
    activity_id = new_activity(db, org, allow_visitors=True)
    sec, late, excused, rejected, no_show, came_anyway = org["one"]
    visitor = org["two"][1]
    leave(db, org, activity_id, excused, approve=True)
    leave(db, org, activity_id, rejected, approve=False, kind="事假")
    leave(db, org, activity_id, came_anyway, approve=True, kind="公假")
    scan(db, activity_id, sec, at(-5))
    scan(db, activity_id, late, at(25))
    scan(db, activity_id, came_anyway, at(1))
    assert scan(db, activity_id, visitor, at(2)).check_in.visitor
    return {
        "id": activity_id,
        "present": [sec, came_anyway],
        "late": late,
        "excused": excused,
        "absent": [rejected, no_show],
        "visitor": visitor,
    }


# --- outcomes and entries ---------------------------------------------------------------------


def test_finalize_records_each_outcome_and_its_points(db, org, meeting):
    changed, outcomes, n_entries, notified = run_finalize(db, meeting["id"])
    assert changed is True
    sec, late, excused, rejected, no_show, came_anyway = org["one"]
    expected = {
        sec: Outcome.PRESENT,
        late: Outcome.LATE,
        excused: Outcome.EXCUSED,
        rejected: Outcome.ABSENT,
        no_show: Outcome.ABSENT,
        came_anyway: Outcome.PRESENT,
    }
    assert outcomes == expected
    assert (n_entries, notified) == (5, 2)

    with write_session(db) as s:
        stored = {a.person_id: a for a, _ in attendance_of(session=s, activity_id=meeting["id"])}
        activity = s.get(Activity, meeting["id"])
        assert (activity.status, activity.finalized_at) == ("final", AFTER)
        # The window had closed before; finalising does not move it.
        assert activity.checkin_closes_at == at(150)
    assert {pid: a.outcome for pid, a in stored.items()} == expected
    assert meeting["visitor"] not in stored

    entries = entries_by_person(db)
    assert set(entries) == {sec, late, came_anyway, rejected, no_show}
    for pid in (sec, late, came_anyway):
        (e,) = entries[pid]
        assert (e.indicator_code, e.points) == ("attendance_present", Decimal(3))
    for pid in (rejected, no_show):
        (e,) = entries[pid]
        assert (e.indicator_code, e.points) == ("attendance_absent", Decimal(-5))
    for pid, (e,) in entries.items():
        assert (e.source, e.status, e.period, e.occurred_on) == (
            "automatic",
            "approved",
            "2026-11",
            date(2026, 11, 25),
        )
        assert e.reason == f"支部党员大会「第四季度党员大会」{expected[pid].label}"
        assert e.created_by_label == "考勤系统"
        assert stored[pid].entry_ids == [e.id]
    assert stored[excused].entry_ids == []


def test_finalize_twice_changes_nothing_the_second_time(db, org, meeting):
    assert run_finalize(db, meeting["id"])[0] is True
    before = counts(db)
    assert before == (5, 6, 2)
    changed, outcomes, n_entries, notified = run_finalize(
        db, meeting["id"], now=AFTER + timedelta(hours=1)
    )
    assert (changed, outcomes, n_entries, notified) == (False, {}, 0, 0)
    assert counts(db) == before
    with write_session(db) as s:
        assert s.get(Activity, meeting["id"]).finalized_at == AFTER
        finals = s.exec(select(AuditLog).where(AuditLog.action == "finalize")).all()
    assert len(finals) == 1
    assert finals[0].after == {"present": 2, "late": 1, "excused": 1, "absent": 2, "entries": 5}


def test_two_concurrent_finalizers_write_the_entries_once(db, org, meeting):
    barrier = threading.Barrier(2)

    def go(actor_id):
        barrier.wait(timeout=30)
        return run_finalize(db, meeting["id"], actor_id=actor_id)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [
            f.result(timeout=120) for f in [pool.submit(go, None), pool.submit(go, org["one"][0])]
        ]
    assert sorted(changed for changed, *_ in results) == [False, True]
    assert sorted(n for _, _, n, _ in results) == [0, 5]
    assert counts(db) == (5, 6, 2)


# --- notices ----------------------------------------------------------------------------------


def test_absent_members_get_one_deduction_notice_and_present_members_none(db, org, meeting):
    run_finalize(db, meeting["id"])
    run_finalize(db, meeting["id"])
    rows = deduction_rows(db)
    targets = {f"user:{org['userid'][pid]}" for pid in meeting["absent"]}
    assert sorted(r.target for r in rows) == sorted(targets)
    for row in rows:
        assert (row.kind, row.period, row.platform, row.status) == (
            "attendance-deduction",
            f"activity-{meeting['id']}",
            "dingtalk",
            "pending",
        )
        text = row.payload["text"]
        assert "缺席" in text
        assert "-5分" in text
        assert text.startswith("11月25日的支部党员大会「第四季度党员大会」考勤已确认")
        assert row.payload["title"] == "考勤结果"
    with write_session(db) as s:
        assert outbox.messages(session=s) == rows  # nothing queued for anyone else


def test_an_absent_member_without_a_chat_account_gets_no_notice_and_nothing_fails(db, org, meeting):
    silent, reachable = meeting["absent"]
    with write_session(db) as s:
        s.get(Person, silent).dingtalk_userid = None
    changed, outcomes, n_entries, notified = run_finalize(db, meeting["id"])
    assert (changed, outcomes[silent], n_entries, notified) == (True, Outcome.ABSENT, 5, 1)
    assert [r.target for r in deduction_rows(db)] == [f"user:{org['userid'][reachable]}"]
    assert [e.points for e in entries_by_person(db)[silent]] == [Decimal(-5)]


def test_a_wecom_only_member_is_notified_on_wecom(db, org, meeting):
    wecom_only = meeting["absent"][0]
    with write_session(db) as s:
        person = s.get(Person, wecom_only)
        person.dingtalk_userid = None
        person.wecom_userid = "wx-absent"
    run_finalize(db, meeting["id"])
    by_target = {r.target: r.platform for r in deduction_rows(db)}
    assert by_target["user:wx-absent"] == "wecom"
    assert len(by_target) == 2


# --- closed months ----------------------------------------------------------------------------


def test_a_closed_month_puts_the_entries_in_the_next_open_month(db, org, meeting):
    with write_session(db) as s:
        close = close_month(
            session=s,
            org=s.get(Organization, org["committee"]),
            period="2026-11",
            actor_label="test",
        )
        assert close.created
    run_finalize(db, meeting["id"])
    entries = [e for es in entries_by_person(db).values() for e in es]
    assert len(entries) == 5
    assert {(e.period, e.occurred_on) for e in entries} == {("2026-12", date(2026, 12, 1))}


def test_entries_skip_every_closed_month(db, org):
    # An October activity made final after October and November are closed lands in December.
    activity_id = new_activity(db, org, starts_at=datetime(2026, 10, 20, 1, 0, tzinfo=UTC))
    with write_session(db) as s:
        committee = s.get(Organization, org["committee"])
        for period in ("2026-10", "2026-11"):
            close_month(session=s, org=committee, period=period, actor_label="test")
    run_finalize(db, activity_id, now=datetime(2026, 12, 2, tzinfo=UTC))
    entries = [e for es in entries_by_person(db).values() for e in es]
    assert len(entries) == 6
    assert {(e.period, e.occurred_on, e.indicator_code) for e in entries} == {
        ("2026-12", date(2026, 12, 1), "attendance_absent")
    }


def test_the_day_is_taken_in_the_local_time_zone(db, org):
    # 16:30 UTC on 30 November is already 1 December in Beijing.
    activity_id = new_activity(db, org, starts_at=datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    run_finalize(db, activity_id, now=datetime(2026, 12, 1, 20, 0, tzinfo=UTC))
    entries = [e for es in entries_by_person(db).values() for e in es]
    assert {(e.period, e.occurred_on) for e in entries} == {("2026-12", date(2026, 12, 1))}
    (row,) = deduction_rows(db)[:1]
    assert row.payload["text"].startswith("12月1日的")


# --- who and when -----------------------------------------------------------------------------


def test_due_for_final_lists_activities_whose_window_has_passed(db, org):
    passed = new_activity(db, org)
    later = new_activity(db, org, starts_at=START + timedelta(days=1))
    cancelled = new_activity(db, org)
    done = new_activity(db, org)
    with write_session(db) as s:
        cancel_activity(
            session=s,
            activity_id=cancelled,
            actor=s.get(Person, org["one"][0]),
            reason="改期",
            now=at(-60),
        )
    run_finalize(db, done)
    with write_session(db) as s:
        assert due_for_final(session=s, now=at(150)) == []  # the closing instant is still open
        assert due_for_final(session=s, now=at(150) + timedelta(seconds=1)) == [passed]
        assert due_for_final(session=s, now=START + timedelta(days=2)) == [passed, later]
    assert run_finalize(db, passed)[0] is True
    with write_session(db) as s:
        assert due_for_final(session=s, now=START + timedelta(days=2)) == [later]


def test_finalize_due_makes_each_passed_activity_final_once(db, org):
    passed = new_activity(db, org)
    other = new_activity(db, org, starts_at=START - timedelta(days=1))
    later = new_activity(db, org, starts_at=START + timedelta(days=1))
    assert finalize_due(engine=db, now=AFTER, tz=TZ) == 2
    assert finalize_due(engine=db, now=AFTER, tz=TZ) == 0
    with write_session(db) as s:
        statuses = {i: s.get(Activity, i).status for i in (passed, other, later)}
    assert statuses == {passed: "final", other: "final", later: "planned"}
    assert counts(db) == (12, 12, 12)


def test_only_a_secretary_may_finalize_and_not_before_the_start(db, org, meeting):
    for outsider in (org["one"][1], org["two"][0]):
        with pytest.raises(ActivityError, match="只有该支部的书记"):
            run_finalize(db, meeting["id"], actor_id=outsider)
    with pytest.raises(ActivityError, match="活动尚未开始"):
        run_finalize(db, meeting["id"], actor_id=org["one"][0], now=at(-1))
    assert counts(db)[:2] == (0, 0)
    # At the start, the secretary may finalise at once; check-in then closes.
    changed, outcomes, *_ = run_finalize(db, meeting["id"], actor_id=org["one"][0], now=at(30))
    assert changed and len(outcomes) == 6
    with write_session(db) as s:
        activity = s.get(Activity, meeting["id"])
        assert activity.checkin_closes_at == at(30)
        (entry,) = s.exec(select(LedgerEntry).where(LedgerEntry.person_id == org["one"][1]))
        assert (entry.created_by_id, entry.created_by_label) == (
            org["one"][0],
            s.get(Person, org["one"][0]).name,
        )
        with pytest.raises(ActivityError, match="考勤已确认"):
            mark_present(
                session=s,
                activity_id=meeting["id"],
                person_id=org["one"][4],
                actor=s.get(Person, org["one"][0]),
                reason="补登",
                now=at(40),
            )


def test_a_cancelled_activity_cannot_be_finalized(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s:
        cancel_activity(
            session=s,
            activity_id=activity_id,
            actor=s.get(Person, org["one"][0]),
            reason="改期",
            now=at(-60),
        )
    with pytest.raises(ActivityError, match="活动已取消"):
        run_finalize(db, activity_id)
    with pytest.raises(ActivityError, match="活动已取消"):
        run_finalize(db, activity_id, actor_id=org["one"][0])
    assert counts(db) == (0, 0, 0)
    with pytest.raises(ActivityError, match="找不到活动"):
        run_finalize(db, activity_id + 1000)


def test_a_masses_person_added_to_the_attendees_does_not_break_finalize(db, org):
    # A 群众 of the branch (e.g. an activist invited to 党课) is added by the secretary: they get
    # an attendance row but no points, and everyone else's attendance is still made final.
    activity_id = new_activity(db, org)
    guest = org["one"][5]
    with write_session(db) as s:
        s.get(Person, guest).member_type = MemberType.masses
        set_expected(
            session=s,
            activity_id=activity_id,
            person_id=guest,
            expected=True,
            actor=s.get(Person, org["one"][0]),
        )
    changed, outcomes, _, _ = run_finalize(db, activity_id)
    assert changed is True
    assert outcomes[guest] is Outcome.ABSENT
    assert len([o for pid, o in outcomes.items() if pid != guest]) == 5
    assert guest not in entries_by_person(db)


def test_a_secretary_cannot_add_someone_from_a_branch_they_do_not_manage(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s, pytest.raises(ActivityError, match="只能添加您所管理组织中的人员"):
        set_expected(session=s, activity_id=activity_id, person_id=org["two"][2], expected=True,
                     actor=s.get(Person, org["one"][0]))


# --- the outbox -------------------------------------------------------------------------------

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def enqueue(s, *, kind="digest", period="2026-11", target="user:a", not_before=T0, text="hi"):
    return outbox.enqueue(
        session=s,
        kind=kind,
        period=period,
        platform="dingtalk",
        target=target,
        payload={"text": text},
        not_before=not_before,
    )


def test_enqueue_makes_one_row_per_kind_period_and_target(db):
    with write_session(db) as s:
        assert enqueue(s, text="first") is True
        assert enqueue(s, text="second") is False
    with write_session(db) as s:
        assert enqueue(s, text="third") is False  # also across transactions
        assert enqueue(s, target="user:b") is True
        assert enqueue(s, period="2026-12") is True
        assert enqueue(s, kind="other") is True
    with write_session(db) as s:
        rows = outbox.messages(session=s)
    assert len(rows) == 4
    assert rows[0].payload == {"text": "first"}
    assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {("pending", 0, T0)}


def test_claim_due_takes_only_due_pending_or_failed_rows_and_counts_the_attempt(db):
    with write_session(db) as s:
        enqueue(s, target="user:due")
        enqueue(s, target="user:later", not_before=T0 + timedelta(minutes=5))
    with write_session(db) as s:
        assert outbox.claim_due(session=s, now=T0 - timedelta(seconds=1)) == []
        claimed = outbox.claim_due(session=s, now=T0)
        assert [(m.target, m.status, m.attempts) for m in claimed] == [("user:due", "sending", 1)]
    with write_session(db) as s:
        # A row being sent is not claimed again.
        claimed = outbox.claim_due(session=s, now=T0 + timedelta(hours=1))
        assert [m.target for m in claimed] == ["user:later"]
    with write_session(db) as s:
        assert outbox.claim_due(session=s, now=T0 + timedelta(days=1)) == []


def test_a_failed_send_backs_off_then_dies_after_the_last_attempt(db):
    with write_session(db) as s:
        enqueue(s)
    now = T0
    for attempt, base in enumerate((15, 30), start=1):
        with write_session(db) as s:
            (message,) = outbox.claim_due(session=s, now=now)
            assert message.attempts == attempt
            outbox.mark_failed(
                session=s, message_id=message.id, now=now, error="timeout", max_attempts=3
            )
        with write_session(db) as s:
            (row,) = outbox.messages(session=s)
        assert (row.status, row.attempts, row.last_error) == ("failed", attempt, "timeout")
        delay = (row.next_attempt_at - now).total_seconds()
        assert base * 0.8 <= delay <= base * 1.2
        with write_session(db) as s:
            assert outbox.claim_due(session=s, now=now + timedelta(seconds=base * 0.8 - 1)) == []
        now = row.next_attempt_at
    with write_session(db) as s:
        (message,) = outbox.claim_due(session=s, now=now)
        assert message.attempts == 3
        outbox.mark_failed(
            session=s, message_id=message.id, now=now, error="x" * 5000, max_attempts=3
        )
    with write_session(db) as s:
        (row,) = outbox.messages(session=s)
        assert (row.status, row.attempts, len(row.last_error)) == ("dead", 3, 1000)
        assert outbox.claim_due(session=s, now=now + timedelta(days=30)) == []
        assert [r.id for r in outbox.messages(session=s, status=OutboxStatus.DEAD)] == [row.id]


def test_a_permanent_failure_is_dead_at_once(db):
    with write_session(db) as s:
        enqueue(s)
    with write_session(db) as s:
        (message,) = outbox.claim_due(session=s, now=T0)
        outbox.mark_failed(
            session=s, message_id=message.id, now=T0, error="no such user", retryable=False
        )
    with write_session(db) as s:
        (row,) = outbox.messages(session=s)
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "no such user")


def test_backoff_is_capped_at_an_hour(db):
    with write_session(db) as s:
        enqueue(s)
    with write_session(db) as s:
        (message,) = outbox.claim_due(session=s, now=T0)
        message.attempts = 20
        outbox.mark_failed(session=s, message_id=message.id, now=T0, error="busy", max_attempts=50)
    with write_session(db) as s:
        (row,) = outbox.messages(session=s)
    assert row.status == "failed"
    assert 0.8 * 3600 <= (row.next_attempt_at - T0).total_seconds() <= 1.2 * 3600


def test_mark_sent_records_delivery_and_clears_the_error(db):
    with write_session(db) as s:
        enqueue(s)
    with write_session(db) as s:
        (message,) = outbox.claim_due(session=s, now=T0)
        outbox.mark_failed(session=s, message_id=message.id, now=T0, error="timeout")
    later = T0 + timedelta(minutes=5)
    with write_session(db) as s:
        (message,) = outbox.claim_due(session=s, now=later)
        outbox.mark_sent(session=s, message_id=message.id, now=later)
        outbox.mark_sent(session=s, message_id=999_999, now=later)  # unknown: ignored
        outbox.mark_failed(session=s, message_id=999_999, now=later, error="x")
    with write_session(db) as s:
        (row,) = outbox.messages(session=s, status=OutboxStatus.SENT)
        assert (row.attempts, row.sent_at, row.last_error) == (2, later, "")
        assert outbox.claim_due(session=s, now=later + timedelta(days=1)) == []


def test_leave_cannot_be_decided_once_attendance_is_final(db, org):
    activity_id = new_activity(db, org)
    member = org["one"][3]
    with write_session(db) as s:
        asked = request_leave(session=s, person=s.get(Person, member), activity_id=activity_id,
                              kind="事假", reason="出差", now=at(-600))
        leave_id = asked.id
    run_finalize(db, activity_id)
    with write_session(db) as s:
        secretary = s.get(Person, org["one"][0])
        assert pending_leaves(session=s, secretary=secretary) == []
        with pytest.raises(ActivityError, match="考勤已确认，不能再审批请假"):
            decide_leave(session=s, leave_id=leave_id, decider=secretary, approve=True,
                         reason="", now=AFTER)


def test_a_secretary_cannot_mark_themselves_present(db, org):
    activity_id = new_activity(db, org)
    with write_session(db) as s, pytest.raises(ActivityError, match="不能为自己补登签到"):
        mark_present(session=s, activity_id=activity_id, person_id=org["one"][0],
                     actor=s.get(Person, org["one"][0]), reason="忘记扫码", now=AFTER)
