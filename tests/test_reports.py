"""Annual and quarterly reports: the scheme's formula, pro-rating, grades, ranks and tiers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlmodel import Session

from app.db import write_session
from app.models import Organization, Person
from app.services import audit, schemes
from app.services.ledger import Actor, record_entry
from app.services.reports import (
    LiveBoardCache,
    branch_year,
    clear_live_boards,
    first_eligible_month,
    member_standing,
)
from tests.factories import Statements, build_org

SYSTEM = Actor("test")


def give(s: Session, person: Person, month: int, code: str, count: int) -> None:
    record_entry(session=s, member_id=person.id, indicator_code=code, count=count,
                 occurred_on=date(2026, month, 8), reason="记录", actor=SYSTEM)


def test_first_eligible_month_follows_the_join_date():
    person = Person(name="新党员", member_type="probationary", organization_id=1)
    assert first_eligible_month(person, 2026) == 1
    person.joined_party_on = date(2026, 7, 1)
    assert first_eligible_month(person, 2026) == 7
    assert first_eligible_month(person, 2025) is None
    assert first_eligible_month(person, 2027) == 1


def test_year_board_pro_rates_late_joiners_and_ranks_by_the_formula(db):
    with write_session(db) as s:
        built = build_org(s, members=3)
        veteran, newcomer, idle = built.everyone()
        newcomer.joined_party_on = date(2026, 7, 1)
        s.flush()
        for month in range(1, 13):
            give(s, veteran, month, "online_study", 5)
            if month >= 7:
                give(s, newcomer, month, "online_study", 5)
        give(s, idle, 3, "online_study", 5)
        board = branch_year(session=s, branch=built.branches[0], year=2026, through=12)
        veteran, newcomer, idle = (p.id for p in (veteran, newcomer, idle))
    rows = {r.person_id: r for r in board.rows}
    # Both earned 5 a month while eligible: the newcomer is averaged over July–December only.
    assert rows[veteran].year.average_base == Decimal(5)
    assert rows[newcomer].year.average_base == Decimal(5)
    assert rows[newcomer].year.eligible_months == 6
    assert rows[idle].year.average_base == Decimal("0.42")  # 5 / 12, half-up
    assert [rows[p].rank for p in (veteran, newcomer, idle)] == [1, 1, 3]
    assert rows[veteran].year.review_missing
    assert rows[veteran].grade == "不合格"  # 5 points a month is far from 80
    assert set(rows[veteran].quarters) == {"2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"}
    assert set(rows[newcomer].quarters) == {"2026-Q3", "2026-Q4"}
    assert board.average == Decimal("3.47")  # (5 + 5 + 0.42) / 3


TIERED = """
code: tiered
name: 分档方案
level: member
dimensions: [{code: work, name: 工作, max: 100}]
indicators:
  - {code: task, name: 任务, dimension: work, kind: score, nature: must, points: 10,
     source: automatic}
period: {base_cap: 100}
tiers:
  - {name: 优秀, quota: 1/3}
  - {name: 合格}
"""


def test_tiers_respect_the_quota_and_keep_ties_together(db):
    with write_session(db) as s:
        built = build_org(s, members=6, scheme=None)
        schemes.publish(session=s, org=built.committee, content=TIERED,
                        effective_from=date(2026, 1, 1), actor_label="test")
        # Scores 60, 50, 50, 30, 20, 10: two 优秀 seats, but the tie at 50 cannot split.
        for person, count in zip(built.everyone(), (6, 5, 5, 3, 2, 1), strict=True):
            give(s, person, 1, "task", count)
        board = branch_year(session=s, branch=built.branches[0], year=2026, through=1)
    assert [(r.rank, r.tier) for r in board.rows] == [
        (1, "优秀"), (2, "合格"), (2, "合格"), (4, "合格"), (5, "合格"), (6, "合格")]


def test_live_boards_are_reused_until_something_is_written(db):
    with write_session(db) as s:
        built = build_org(s, members=3)
        first, second, _ = built.everyone()
        give(s, first, 11, "online_study", 2)
    cache = LiveBoardCache(clock=lambda: 0.0)
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        month = cache.get(session=s, branch=branch, period="2026-11")
        assert cache.get(session=s, branch=branch, period="2026-11") is month
    with write_session(db) as s:
        give(s, second, 11, "online_study", 5)
    with write_session(db) as s:
        fresh = cache.get(session=s, branch=branch, period="2026-11")
    assert fresh is not month
    assert fresh.board.rows[0].name == second.name


def test_a_year_board_is_scored_once_until_the_data_changes(db):
    with write_session(db) as s:
        built = build_org(s, members=2)
        first, second = built.everyone()
        give(s, first, 3, "online_study", 5)
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        board = branch_year(session=s, branch=branch, year=2026, through=12)
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        with Statements(db) as seen:
            assert branch_year(session=s, branch=branch, year=2026, through=12) is board
    assert seen.count == 1  # the data version; no entry is read again
    assert board.rows[0].person_id == first.id
    with write_session(db) as s:
        give(s, second, 4, "online_study", 5)
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        fresh = branch_year(session=s, branch=branch, year=2026, through=12)
    assert fresh is not board
    assert [r.rank for r in board.rows] == [1, 2] and [r.rank for r in fresh.rows] == [1, 1]


def test_a_cached_board_expires(db):
    with write_session(db) as s:
        built = build_org(s, members=2)
    now = [0.0]
    cache = LiveBoardCache(max_age_s=5, clock=lambda: now[0])
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        board = cache.get(session=s, branch=branch, period="2026-11")
        now[0] = 6.0
        assert cache.get(session=s, branch=branch, period="2026-11") is not board


def test_every_audited_write_moves_the_data_version(db):
    with write_session(db) as s:
        before = audit.data_version(s)
        built = build_org(s, members=1)
        give(s, built.everyone()[0], 11, "online_study", 1)
        assert audit.data_version(s) > before + 2  # orgs, scheme, entry: each audited


def test_a_member_sees_their_newest_points_ranked_against_the_cached_board(db):
    with write_session(db) as s:
        built = build_org(s, members=3)
        first, second, _ = built.everyone()
        give(s, first, 11, "online_study", 3)
    with write_session(db) as s:
        assert member_standing(session=s, person=second, period="2026-11").rank_in_branch == 2
        give(s, second, 11, "online_study", 5)
        standing = member_standing(session=s, person=second, period="2026-11")
    assert (standing.total, standing.rank_in_branch, standing.branch_size) == (Decimal(5), 1, 3)


def test_once_a_branch_board_is_current_a_members_first_standing_costs_no_ledger_query(db):
    with write_session(db) as s:
        built = build_org(s, members=4)
        first, second, third, _ = built.everyone()
        give(s, first, 11, "online_study", 3)
        give(s, second, 11, "online_study", 5)
        give(s, third, 11, "study_speech", 1)  # declared: awaits review
    with write_session(db) as s:
        member_standing(session=s, person=s.get(Person, first.id), period="2026-11")
    with write_session(db) as s:
        asker = s.get(Person, second.id)
        pending_asker = s.get(Person, third.id)
        with Statements(db) as seen:
            standing = member_standing(session=s, person=asker, period="2026-11")
            pending = member_standing(session=s, person=pending_asker, period="2026-11")
        assert seen.count == 1  # the data version, nothing else
    assert (standing.total, standing.rank_in_branch, standing.branch_size) == (Decimal(5), 1, 4)
    assert (pending.pending.count, pending.pending.points) == (1, Decimal(2))
    assert standing.pending.count == 0
    clear_live_boards()  # the same standings computed the long way agree
    with write_session(db) as s:
        assert member_standing(session=s, person=s.get(Person, second.id),
                               period="2026-11") == standing


def test_a_board_read_by_a_transaction_that_wrote_is_not_kept(db):
    with write_session(db) as s:
        built = build_org(s, members=2)
        first, second = built.everyone()
    cache = LiveBoardCache(clock=lambda: 0.0)
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        give(s, first, 11, "online_study", 2)
        cache.get(session=s, branch=branch, period="2026-11")
        s.rollback()
    # Another write then reaches the same data version the rolled-back one had.
    with write_session(db) as s:
        give(s, second, 11, "online_study", 3)
    with write_session(db) as s:
        branch = s.get(Organization, built.branches[0].id)
        after = cache.get(session=s, branch=branch, period="2026-11")
    assert [(r.name, r.total) for r in after.board.rows] == [
        (second.name, Decimal(3)), (first.name, Decimal(0))]
