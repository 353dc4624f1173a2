"""Month close: set-based scores equal the pure rule, frozen results never change."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import select

from app.db import write_session
from app.domain.scheme import load_scheme
from app.domain.scheme import preset_text as preset
from app.domain.scoring import counted_to_date, score_month
from app.models import EntrySource, LedgerEntry, MonthResult, Organization, PeriodClose
from app.services import schemes
from app.services.ledger import (
    Actor,
    LedgerError,
    approved_facts,
    record_entry,
    revoke_entry,
)
from app.services.month_close import PG_CLOSE_SETTINGS, MonthCloseError, close_month
from app.services.reports import branch_board, live_scores, member_month
from tests.factories import build_org

SYSTEM = Actor("test")

# Exercises what the presets do not all use: full baselines, sub-dimensions with their own
# deductions, capped bonus, yearly caps, and a veto that zeroes the month.
EDGE_SCHEME = """
code: edge
name: 边界方案
level: member
dimensions:
  - code: conduct
    name: 约束项
    max: 20
    baseline: full
    subdimensions:
      - {code: punctual, name: 守时, max: 8}
  - code: work
    name: 业绩项
    max: 30
period:
  base_cap: 45
  deductions: dimension
  bonus: {name: 加分, cap_per_month: 7, cap_per_year: 12}
veto: {period_score: zero, disqualify_year: true}
indicators:
  - {code: late, name: 迟到, dimension: punctual, kind: deduction, nature: forbidden,
     points: -3, cap_per_month: 7, source: automatic}
  - {code: lapse, name: 违规, dimension: conduct, kind: deduction, nature: forbidden,
     points: -4.5, source: automatic}
  - {code: task, name: 完成任务, dimension: work, kind: score, nature: must, points: 6,
     cap_per_month: 24, cap_per_year: 60, source: automatic}
  - {code: extra, name: 额外工作, dimension: work, kind: score, nature: encouraged,
     points: 2.25, source: automatic}
  - {code: award, name: 表彰, kind: bonus, nature: encouraged, points: 2.5,
     cap_per_year: 9, source: automatic}
  - {code: veto_law, name: 违法, kind: veto, nature: forbidden, points: 0, source: automatic}
"""

BASE_MODE = EDGE_SCHEME.replace("code: edge", "code: edge_base").replace(
    "deductions: dimension", "deductions: base").replace(
    "{period_score: zero, disqualify_year: true}", "{period_score: none, disqualify_year: true}")


def build(s, scheme_text, *, name, members=4, branches=2):
    built = build_org(s, name=name, members=members, branches=branches, scheme=None)
    schemes.publish(session=s, org=built.committee, content=scheme_text,
                    effective_from=date(2026, 1, 1), actor_label="test")
    return built


def frozen(s, period, people):
    rows = s.exec(select(MonthResult).where(MonthResult.period == period)).all()
    return {r.person_id: r for r in rows if r.person_id in {p.id for p in people}}


# (member index, indicator index, count, reverse it?) — indexes wrap around the scheme's lists.
entry_plan = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 60), st.integers(1, 4),
              st.sampled_from([False, False, False, True])),
    max_size=30,
)
SCHEMES = {"edge": EDGE_SCHEME, "edge_base": BASE_MODE, "xinluo": preset("xinluo"),
           "datang": preset("datang"), "jiangzhong": preset("jiangzhong")}


@pytest.mark.parametrize("scheme_name", list(SCHEMES))
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(october=entry_plan, november=entry_plan)
def test_close_in_sql_equals_the_pure_rule_month_after_month(db, scheme_name, october,
                                                             november):
    scheme_text = SCHEMES[scheme_name]
    scheme = load_scheme(scheme_text)
    codes = [i.code for i in scheme.indicators]
    with write_session(db) as s:
        name = f"党委{s.exec(select(Organization.id)).all().__len__()}"
        built = build(s, scheme_text, name=name)
        people = built.everyone()
        for month, plan in ((10, october), (11, november)):
            for who, index, count, revoke in plan:
                entry = record_entry(session=s, member_id=people[who].id,
                                     indicator_code=codes[index % len(codes)], count=count,
                                     occurred_on=date(2026, month, 10), reason="随机",
                                     actor=SYSTEM, source=EntrySource.ADJUSTMENT)
                if revoke:
                    revoke_entry(session=s, entry_id=entry.id, reason="冲销", actor=SYSTEM,
                                 today=date(2026, month, 11))
            close_month(session=s, org=built.committee, period=f"2026-{month}",
                        actor_label="test")
        ids = [p.id for p in people]
        facts = approved_facts(session=s, person_ids=ids, periods=["2026-10", "2026-11"])
        for pid in ids:
            oct_score = score_month(scheme=scheme, entries=facts.get((pid, "2026-10"), []))
            nov_score = score_month(scheme=scheme, entries=facts.get((pid, "2026-11"), []),
                                    year_to_date=counted_to_date([oct_score]))
            for period, expected in (("2026-10", oct_score), ("2026-11", nov_score)):
                row = frozen(s, period, people)[pid]
                assert (row.base, row.bonus, row.total, row.vetoed) == (
                    expected.base, expected.bonus, expected.total, expected.vetoed), period
                dims = {d.code: d.score for d in expected.dimensions}
                assert {k: Decimal(str(v)) for k, v in row.dimensions.items()} == dims


def test_close_freezes_ranks_and_is_idempotent(db):
    with write_session(db) as s:
        built = build_org(s, members=4)
        people = built.everyone()
        for person, count in zip(people, (3, 5, 5, 1), strict=True):
            record_entry(session=s, member_id=person.id, indicator_code="online_study",
                         count=count, occurred_on=date(2026, 11, 2), reason="学习",
                         actor=SYSTEM)
        first = close_month(session=s, org=built.committee, period="2026-11", actor_label="t")
        assert first.created and first.close.members == 4
        again = close_month(session=s, org=built.committee, period="2026-11", actor_label="t")
        assert not again.created and again.close.id == first.close.id
        rows = frozen(s, "2026-11", people)
        # online_study is capped at 5 a month: 3, 5, 5, 1 → ranks 1, 1 for the fives.
        assert [rows[p.id].total for p in people] == [Decimal(3), Decimal(5), Decimal(5),
                                                      Decimal(1)]
        assert [rows[p.id].rank_in_branch for p in people] == [3, 1, 1, 4]
        assert s.exec(select(MonthResult)).all().__len__() == 4


def test_close_gives_the_transaction_back_its_planner_settings(db):
    if db.dialect.name != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")
    with write_session(db) as s:
        built = build_org(s, members=2)
        record_entry(session=s, member_id=built.everyone()[0].id, indicator_code="online_study",
                     occurred_on=date(2026, 11, 2), reason="学习", actor=SYSTEM)
        s.execute(text("SET LOCAL enable_hashagg = on"))

        def current() -> dict[str, str]:
            return {name: s.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one()
                    for name in PG_CLOSE_SETTINGS}

        before = current()
        assert close_month(session=s, org=built.committee, period="2026-11",
                           actor_label="t").created
        assert current() == before


def test_publishing_a_new_version_leaves_closed_results_byte_identical(db):
    with write_session(db) as s:
        built = build_org(s, members=3)
        for person in built.everyone():
            record_entry(session=s, member_id=person.id, indicator_code="attendance_present",
                         occurred_on=date(2026, 11, 2), reason="主题党日", actor=SYSTEM)
        close_month(session=s, org=built.committee, period="2026-11", actor_label="t")
        before = [r.model_dump_json() for r in s.exec(select(MonthResult).order_by(
            MonthResult.id))]
        changed = preset("xinluo").replace("points: 2\n", "points: 3\n", 1)
        with pytest.raises(schemes.SchemePublishError, match="已结账"):
            schemes.publish(session=s, org=built.committee, content=changed,
                            effective_from=date(2026, 11, 1), actor_label="t")
        schemes.publish(session=s, org=built.committee, content=changed,
                        effective_from=date(2026, 12, 1), actor_label="t")
        again = close_month(session=s, org=built.committee, period="2026-11", actor_label="t")
        assert not again.created
        after = [r.model_dump_json() for r in s.exec(select(MonthResult).order_by(
            MonthResult.id))]
        assert after == before
        board = branch_board(session=s, branch=built.branches[0], period="2026-11")
        assert board.closed and json.dumps([str(r.total) for r in board.rows])


def test_months_close_in_order_within_a_year(db):
    with write_session(db) as s:
        built = build_org(s, members=2)
        record_entry(session=s, member_id=built.everyone()[0].id, indicator_code="online_study",
                     occurred_on=date(2026, 10, 2), reason="学习", actor=SYSTEM)
        with pytest.raises(MonthCloseError, match="请先结账 2026-10"):
            close_month(session=s, org=built.committee, period="2026-11", actor_label="t")


def test_a_month_without_a_scheme_cannot_close(db):
    with write_session(db) as s:
        built = build_org(s, scheme=None)
        with pytest.raises(MonthCloseError, match="没有生效的积分方案"):
            close_month(session=s, org=built.committee, period="2026-11", actor_label="t")
        assert s.exec(select(PeriodClose)).all() == []


def test_member_report_explains_the_score_down_to_entries(db):
    with write_session(db) as s:
        built = build_org(s, members=3)
        me = built.everyone()[1]
        for code, count in (("online_study", 7), ("attendance_present", 2)):
            record_entry(session=s, member_id=me.id, indicator_code=code, count=count,
                         occurred_on=date(2026, 11, 3), reason="记录", actor=SYSTEM)
        report = member_month(session=s, person=me, period="2026-11")
        assert not report.closed and report.rank_in_branch == 1 and report.branch_size == 3
        study = next(i for i in report.score.indicators if i.code == "online_study")
        assert (study.raw, study.counted, study.cap_applied) == (Decimal(7), Decimal(5), True)
        assert [e.indicator_code for e in report.entries] == ["online_study",
                                                              "attendance_present"]
        assert report.total == live_scores(session=s, org=built.branches[0],
                                           person_ids=[me.id], period="2026-11")[me.id].total


def test_an_entry_racing_a_close_waits_and_is_refused(db):
    with write_session(db) as s:
        built = build_org(s, members=2)
        committee_id, member_id = built.committee.id, built.everyone()[0].id
    outcome: dict[str, object] = {}

    def record_during_close() -> None:
        started = time.monotonic()
        try:
            with write_session(db) as s:
                record_entry(session=s, member_id=member_id, indicator_code="online_study",
                             occurred_on=date(2026, 11, 9), reason="并发", actor=SYSTEM)
        except LedgerError as exc:
            outcome["error"] = str(exc)
        outcome["waited"] = time.monotonic() - started

    with write_session(db) as s:
        close_month(session=s, org=s.get(Organization, committee_id), period="2026-11",
                    actor_label="t")
        racer = threading.Thread(target=record_during_close)
        racer.start()
        time.sleep(0.5)  # the racer is now blocked behind the close's lock
    racer.join(timeout=30)
    assert "已结账" in str(outcome.get("error"))
    assert outcome["waited"] >= 0.4
    with write_session(db) as s:
        assert s.exec(select(LedgerEntry)).all() == []
