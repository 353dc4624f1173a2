"""The append-only ledger: recording, review without self-awarding, reversal, closed months."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import select

from app.db import write_session
from app.models import AuditLog, EntryStatus, LedgerEntry, Organization
from app.services.ledger import (
    Actor,
    LedgerError,
    record_entry,
    review_entry,
    revoke_entry,
    status_of,
)
from app.services.month_close import close_month
from tests.factories import build_org

SYSTEM = Actor("test")
NOV = date(2026, 11, 5)


@pytest.fixture
def org(db):
    with write_session(db) as s:
        built = build_org(s, members=3)
        return {"committee": built.committee.id, "people": [p.id for p in built.everyone()]}


def add(s, member, code="online_study", *, on=NOV, actor=SYSTEM, **kw):
    return record_entry(session=s, member_id=member, indicator_code=code, occurred_on=on,
                        reason="测试", actor=actor, **kw)


def test_automatic_entries_count_at_once_with_the_scheme_points(db, org):
    with write_session(db) as s:
        entry = add(s, org["people"][1], count=3)
        assert (entry.points, entry.period, entry.status) == (Decimal(3), "2026-11", "approved")
        assert entry.scheme_version_id is not None


@pytest.mark.parametrize(("kw", "message"), [
    ({"count": 1001}, "次数必须是 1 到 1000"), ({"count": 2**40}, "次数必须是 1 到 1000"),
    ({"on": date(1, 1, 1)}, "不在可记录的范围内"), ({"on": date(9999, 12, 31)}, "不在可记录"),
])
def test_counts_and_dates_out_of_range_are_refused_before_anything_is_written(db, org, kw,
                                                                               message):
    with write_session(db) as s:
        with pytest.raises(LedgerError, match=message):
            add(s, org["people"][1], **kw)
        assert s.exec(select(LedgerEntry)).first() is None


def test_declared_entries_need_evidence_and_wait_for_review(db, org):
    member, secretary, other = org["people"][1], org["people"][0], org["people"][2]
    with write_session(db) as s:
        with pytest.raises(LedgerError, match="佐证材料"):
            add(s, member, "study_notes", actor=Actor("m", member))
        entry = add(s, member, "study_notes", actor=Actor("m", member), evidence=["f/1.jpg"])
        assert status_of(session=s, entry=entry) is EntryStatus.PENDING
        with pytest.raises(LedgerError, match="不能审核自己"):
            review_entry(session=s, entry_id=entry.id, actor=Actor("m", member), approve=True)
        with pytest.raises(LedgerError, match="驳回时必须填写理由"):
            review_entry(session=s, entry_id=entry.id, actor=Actor("s", secretary), approve=False)
        review_entry(session=s, entry_id=entry.id, actor=Actor("s", secretary), approve=True)
        assert status_of(session=s, entry=entry) is EntryStatus.APPROVED
        with pytest.raises(LedgerError, match="已处理"):
            review_entry(session=s, entry_id=entry.id, actor=Actor("o", other), approve=False,
                         reason="改主意")


def test_the_creator_of_an_assessed_entry_cannot_approve_it(db, org):
    member, secretary = org["people"][1], org["people"][0]
    with write_session(db) as s:
        entry = add(s, member, "political_review", actor=Actor("s", secretary))
        assert entry.status == "pending"
        with pytest.raises(LedgerError, match="不能审核自己"):
            review_entry(session=s, entry_id=entry.id, actor=Actor("s", secretary), approve=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"code": "no_such_indicator"}, "没有指标"), ({"count": 0}, "次数必须是 1 到 1000"),
     ({"on": date(2025, 12, 31)}, "没有生效的积分方案")],
)
def test_bad_entries_are_refused_in_chinese(db, org, kwargs, message):
    with write_session(db) as s, pytest.raises(LedgerError, match=message):
        add(s, org["people"][0], **kwargs)


def test_ledger_rows_cannot_be_updated_or_deleted_even_in_sql(db, org):
    with write_session(db) as s:
        entry_id = add(s, org["people"][0]).id
    for statement in (f"UPDATE ledger_entry SET points = 99 WHERE id = {entry_id}",
                      f"DELETE FROM ledger_entry WHERE id = {entry_id}",
                      "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), db.begin() as conn:
            conn.execute(text(statement))
    with write_session(db) as s:
        assert s.get(LedgerEntry, entry_id).points == Decimal(1)


def test_revoking_adds_a_linked_reversing_entry_once(db, org):
    with write_session(db) as s:
        original = add(s, org["people"][0], count=2)
        reversal = revoke_entry(session=s, entry_id=original.id, reason="重复记录", actor=SYSTEM,
                                today=date(2026, 11, 20))
        assert (reversal.points, reversal.reversal_of_id, reversal.period) == (
            Decimal(-2), original.id, "2026-11")
        assert reversal.source == "adjustment"
        with pytest.raises(LedgerError, match="已被"):
            revoke_entry(session=s, entry_id=original.id, reason="再来", actor=SYSTEM,
                         today=NOV)
        with pytest.raises(LedgerError, match="本身是冲销记录"):
            revoke_entry(session=s, entry_id=reversal.id, reason="x", actor=SYSTEM, today=NOV)


def test_a_closed_month_refuses_entries_and_corrections_go_to_the_next_open_month(db, org):
    member = org["people"][0]
    with write_session(db) as s:
        original_id = add(s, member).id
        close_month(session=s, org=s.get(Organization, org["committee"]), period="2026-11",
                    actor_label="test")
    with write_session(db) as s:
        with pytest.raises(LedgerError, match="2026-11 已结账"):
            add(s, member)
        reversal = revoke_entry(session=s, entry_id=original_id, reason="更正", actor=SYSTEM,
                                today=date(2026, 11, 28))
        assert (reversal.period, reversal.occurred_on) == ("2026-12", date(2026, 12, 1))
        assert reversal.reversal_of_id == original_id


def test_every_ledger_write_is_audited(db, org):
    member, secretary = org["people"][1], org["people"][0]
    with write_session(db) as s:
        entry = add(s, member, "political_review", actor=Actor("书记", secretary))
        review_entry(session=s, entry_id=entry.id, actor=Actor("委员", org["people"][2]),
                     approve=True)
        revoke_entry(session=s, entry_id=entry.id, reason="误评", actor=SYSTEM, today=NOV)
        actions = [(a.action, a.actor_label) for a in s.exec(
            select(AuditLog).where(AuditLog.entity == "ledger_entry").order_by(AuditLog.id))]
    assert actions == [("create", "书记"), ("review", "委员"), ("revoke", "test")]
