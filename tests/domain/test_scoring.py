"""Scoring: month/quarter/year, grades, ranking, tiers, boards — with property tests."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.scheme import (
    Baseline,
    DeductionMode,
    IndicatorKind,
    PeriodRules,
    RankingMode,
    Scheme,
    VetoEffect,
    VetoRules,
    load_preset,
    load_scheme,
)
from app.domain.scoring import (
    BoardRow,
    EntryFact,
    MonthScore,
    assign_tiers,
    branch_average,
    competition_rank,
    counted_to_date,
    grade_for,
    score_month,
    score_quarter,
    score_year,
    star_for,
    visible_board,
)

D = Decimal
XINLUO = load_preset("xinluo")
DATANG = load_preset("datang")
JIANGZHONG = load_preset("jiangzhong")
# Same indicators as xinluo, but deductions charged against the whole base.
XINLUO_BASE_MODE = XINLUO.model_copy(
    update={"period": PeriodRules(base_cap=D(100), deductions=DeductionMode.base)}
)
DAY = date(2026, 3, 10)


def fact(code: str, count: int = 1, *, scheme: Scheme = XINLUO) -> EntryFact:
    return EntryFact(code, scheme.indicator_by_code[code].points * count, DAY)


def reverse(entry: EntryFact) -> EntryFact:
    return EntryFact(entry.indicator_code, -entry.points, entry.occurred_on, reversal=True)


def oracle_base(scheme: Scheme, entries: list[EntryFact]) -> Decimal:
    """Independent statement of the rule: cap each indicator, fill sub-dimensions and dimensions
    from their baseline and clamp each to [0, max], cap the sum, then charge base-mode
    deductions."""
    raw: dict[str, Decimal] = defaultdict(Decimal)
    for e in entries:
        raw[e.indicator_code] += e.points
    counted = {}
    for code, value in raw.items():
        cap = scheme.indicator_by_code[code].cap_per_month
        counted[code] = value if cap is None else max(-cap, min(cap, value))

    def charged_to(part: str) -> Decimal:
        total = D(0)
        for ind in scheme.indicators:
            if ind.dimension != part or ind.code not in counted:
                continue
            if ind.kind is IndicatorKind.score or (
                ind.kind is IndicatorKind.deduction
                and scheme.period.deductions is DeductionMode.dimension
            ):
                total += counted[ind.code]
        return total

    base = D(0)
    for d in scheme.dimensions:
        full = d.baseline is Baseline.full
        subs = D(0)
        for s in d.subdimensions:
            subs += min(s.max, max(D(0), (s.max if full else 0) + charged_to(s.code)))
        rest = d.max - sum(s.max for s in d.subdimensions) if full else D(0)
        base += min(d.max, max(D(0), rest + charged_to(d.code) + subs))
    base = min(base, scheme.period.base_cap)
    if scheme.period.deductions is DeductionMode.base:
        deductions = sum(
            counted[i.code]
            for i in scheme.indicators
            if i.kind is IndicatorKind.deduction and i.code in counted
        )
        base = max(D(0), base + deductions)
    return base


Ledger = list[tuple[EntryFact, bool]]


def ledgers(scheme: Scheme) -> st.SearchStrategy[Ledger]:
    """Random approved entries (no vetoes), each flagged if it has been reversed."""
    codes = [i.code for i in scheme.indicators if i.kind is not IndicatorKind.veto]
    one = st.builds(
        lambda code, count, day: EntryFact(
            code, scheme.indicator_by_code[code].points * count, date(2026, 3, day)
        ),
        st.sampled_from(codes),
        st.integers(1, 4),
        st.integers(1, 31),
    )
    return st.lists(st.tuples(one, st.booleans()), max_size=40)


def facts(ledger: Ledger) -> list[EntryFact]:
    return [e for e, _ in ledger] + [reverse(e) for e, reversed_ in ledger if reversed_]


SCHEMES = [XINLUO, DATANG, JIANGZHONG, XINLUO_BASE_MODE]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), which=st.integers(0, len(SCHEMES) - 1))
def test_month_base_equals_independent_clamped_sum(data: st.DataObject, which: int) -> None:
    scheme = SCHEMES[which]
    entries = facts(data.draw(ledgers(scheme)))
    month = score_month(scheme=scheme, entries=entries)
    assert month.base == oracle_base(scheme, entries).quantize(D("0.01"))
    assert D(0) <= month.base <= scheme.period.base_cap
    for line in month.dimensions:
        assert D(0) <= line.score <= line.max
        assert all(D(0) <= s.score <= s.max for s in line.subdimensions)
    assert month.total == month.base + month.bonus


@settings(max_examples=100, deadline=None)
@given(data=st.data(), which=st.integers(0, len(SCHEMES) - 1))
def test_reversing_every_entry_returns_to_an_empty_month(data: st.DataObject, which: int) -> None:
    scheme = SCHEMES[which]
    ledger = data.draw(ledgers(scheme))
    # Reverse every entry not reversed yet (the ledger never reverses a reversal).
    everything = facts(ledger) + [reverse(e) for e, reversed_ in ledger if not reversed_]
    month = score_month(scheme=scheme, entries=everything)
    empty = score_month(scheme=scheme, entries=[])
    assert (month.base, month.bonus, month.total) == (empty.base, empty.bonus, empty.total)
    assert all(line.counted == 0 and line.entries == 0 for line in month.indicators)
    if scheme is XINLUO:
        assert (month.base, month.bonus, month.total) == (0, 0, 0)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), which=st.integers(0, len(SCHEMES) - 1))
def test_scoring_is_order_independent(data: st.DataObject, which: int) -> None:
    scheme = SCHEMES[which]
    entries = facts(data.draw(ledgers(scheme)))
    shuffled = data.draw(st.permutations(entries))
    assert score_month(scheme=scheme, entries=shuffled) == score_month(
        scheme=scheme, entries=entries
    )


def test_month_breakdown_explains_caps_and_clamps() -> None:
    entries = [fact("attendance_present", 5), fact("attendance_absent", 5)]
    entries += [fact("kpi_completion", 7), fact("urgent_task", 3), fact("honour_national", 2)]
    month = score_month(scheme=XINLUO, entries=entries)
    lines = {line.code: line for line in month.indicators}
    assert (lines["attendance_present"].raw, lines["attendance_present"].counted) == (15, 12)
    assert lines["attendance_present"].cap_applied
    assert (lines["attendance_absent"].raw, lines["attendance_absent"].counted) == (-25, -15)
    dims = {d.code: d for d in month.dimensions}
    # 12 - 15 = -3: the dimension stops at 0 and does not eat into other dimensions.
    assert (dims["discipline"].raw, dims["discipline"].score, dims["discipline"].clamped) == (
        -3,
        0,
        True,
    )
    role = {s.code: s for s in dims["role"].subdimensions}
    assert role["work_performance"].score == 7
    assert (role["task_response"].raw, role["task_response"].score) == (5, 5)  # 7.5 capped at 5
    assert dims["role"].score == 12
    assert month.base == 12
    assert month.bonus == 20  # 荣誉奖励加分 is uncapped and kept apart from the base
    assert month.total == 32
    assert not month.vetoed


def test_full_baseline_dimension_starts_at_max() -> None:
    empty = score_month(scheme=DATANG, entries=[])
    assert empty.base == 20  # 约束项 starts at its full 20
    lapses = [fact(c, scheme=DATANG) for c in ("attendance_absent", "dues_late", "rule_violation")]
    month = score_month(
        scheme=DATANG, entries=[*lapses, fact("attendance_absent", 2, scheme=DATANG)]
    )
    constraint = next(d for d in month.dimensions if d.code == "constraint")
    # 20 - 15 - 3 - 5 = -3: the dimension stops at 0.
    assert (constraint.baseline, constraint.raw, constraint.score) == (20, -3, 0)
    assert month.base == 0


def test_base_mode_charges_deductions_after_the_cap() -> None:
    full_marks = [
        EntryFact(i.code, i.cap_per_month, DAY)
        for i in XINLUO.indicators
        if i.kind is IndicatorKind.score
    ]
    assert score_month(scheme=XINLUO_BASE_MODE, entries=full_marks).base == 100
    month = score_month(
        scheme=XINLUO_BASE_MODE, entries=[*full_marks, fact("attendance_absent", 2)]
    )
    assert month.base == 90
    dims = {d.code: d for d in month.dimensions}
    assert dims["discipline"].score == 25  # the deduction is not charged to the dimension


def test_veto_voids_the_month_and_year_and_can_be_withdrawn() -> None:
    veto = fact("veto_law")
    month = score_month(scheme=XINLUO, entries=[fact("attendance_present"), veto])
    assert month.vetoed and month.total is None and month.vetoes == ("veto_law",)
    assert month.base == 3  # kept for the explanation, but it no longer counts
    assert month.effective_base == 0
    withdrawn = score_month(
        scheme=XINLUO, entries=[fact("attendance_present"), veto, reverse(veto)]
    )
    assert not withdrawn.vetoed and withdrawn.total == 3

    year = score_year(scheme=XINLUO, months={1: month}, democratic_review=D(95), eligible_months=1)
    assert year.vetoed and year.score is None
    assert grade_for(scheme=XINLUO, score=year.score) is None


def test_veto_zero_without_disqualification() -> None:
    scheme = XINLUO.model_copy(
        update={"veto": VetoRules(period_score=VetoEffect.zero, disqualify_year=False)}
    )
    vetoed = score_month(scheme=scheme, entries=[fact("attendance_present"), fact("veto_law")])
    assert vetoed.total == 0
    clean = score_month(scheme=scheme, entries=[fact("attendance_present", 4)])
    year = score_year(
        scheme=scheme, months={1: vetoed, 2: clean}, democratic_review=None, eligible_months=2
    )
    assert year.average_base == 6  # (0 + 12) / 2: the vetoed month counts 0
    assert year.score == 6 and year.review_missing
    quarter = score_quarter(scheme=scheme, months=[vetoed, clean])
    assert (quarter.average_base, quarter.total, quarter.vetoed_months) == (6, 6, 1)


def month_with_base(base: int, *extra: EntryFact) -> MonthScore:
    """A xinluo month at `base` (80..100): the two 综合评分 items carry the part above 80."""
    political = min(10, base - 80)
    entries = [
        EntryFact(i.code, i.cap_per_month, DAY)
        for i in XINLUO.indicators
        if i.kind is IndicatorKind.score and i.code not in {"political_review", "kpi_completion"}
    ]
    entries += [fact("political_review", political), fact("kpi_completion", base - 80 - political)]
    entries = [e for e in entries if e.points]
    return score_month(scheme=XINLUO, entries=[*entries, *extra])


def test_worked_example_seed_003() -> None:
    bases = [92, 95, 88, 100, 97, 93, 96, 94, 99, 100, 91, 96]
    bonuses = {5: [fact("honour_local")], 9: [fact("article_adopted")]}
    months = {m: month_with_base(b, *bonuses.get(m, [])) for m, b in enumerate(bases, start=1)}
    assert [months[m].base for m in range(1, 13)] == bases
    year = score_year(scheme=XINLUO, months=months, democratic_review=D("88.5"), eligible_months=12)
    # By hand: monthly bases add up to 1141; 1141 / 12 = 95.0833… → 95.08.
    #   95.08 × 90% = 85.572;  民主评议 88.5 × 10% = 8.85;  加分 = 3 (区级表彰) + 1 (稿件) = 4.
    #   85.572 + 8.85 + 4 = 98.422 → 98.42, which is ≥ 90 and < 100: 合格.
    assert year.average_base == D("95.08")
    assert year.bonus == 4
    assert year.score == D("98.42")
    assert grade_for(scheme=XINLUO, score=year.score) == "合格"
    # One more 市级表彰 (5, uncapped) in December lifts the member to 优秀: 103.42.
    months[12] = month_with_base(96, fact("honour_municipal"))
    year = score_year(scheme=XINLUO, months=months, democratic_review=D("88.5"), eligible_months=12)
    assert year.score == D("103.42")
    assert grade_for(scheme=XINLUO, score=year.score) == "优秀"


@pytest.mark.parametrize(
    ("score", "grade"),
    [("100", "优秀"), ("99.99", "合格"), ("90", "合格"), ("80", "基本合格"), ("79.99", "不合格")],
)
def test_grade_thresholds(score: str, grade: str) -> None:
    assert grade_for(scheme=XINLUO, score=D(score)) == grade


def test_member_who_joined_in_july_is_pro_rated() -> None:
    months = {m: month_with_base(90) for m in range(7, 13)}
    year = score_year(scheme=XINLUO, months=months, democratic_review=D(90), eligible_months=6)
    assert (year.average_base, year.score, year.scored_months) == (90, 90, 6)
    # An eligible month without any score counts 0 rather than being skipped.
    del months[12]
    year = score_year(scheme=XINLUO, months=months, democratic_review=D(90), eligible_months=6)
    assert year.average_base == 75
    with pytest.raises(ValueError, match="eligible_months"):
        score_year(scheme=XINLUO, months=months, democratic_review=None, eligible_months=4)


def test_quarter_summary() -> None:
    quarter = score_quarter(
        scheme=XINLUO,
        months=[
            month_with_base(90),
            month_with_base(95, fact("honour_local")),
            month_with_base(91),
        ],
    )
    assert (quarter.months, quarter.average_base, quarter.bonus, quarter.total) == (
        3,
        D("92.00"),
        3,
        D("95.00"),
    )


def test_yearly_indicator_caps_carry_across_months() -> None:
    commando = fact("commando_team", 2, scheme=JIANGZHONG)  # 10 a month; 20 a year
    months: dict[int, MonthScore] = {}
    for m in (1, 2, 3):
        ytd = counted_to_date(months.values())
        months[m] = score_month(scheme=JIANGZHONG, entries=[commando], year_to_date=ytd)
    assert [months[m].bonus for m in (1, 2, 3)] == [10, 10, 0]
    assert months[3].indicators[0].cap_applied
    year = score_year(scheme=JIANGZHONG, months=months, democratic_review=None, eligible_months=3)
    assert year.bonus == 20
    uncarried = {m: score_month(scheme=JIANGZHONG, entries=[commando]) for m in (1, 2, 3)}
    with pytest.raises(ValueError, match="year_to_date"):
        score_year(scheme=JIANGZHONG, months=uncarried, democratic_review=None, eligible_months=3)


def test_scheme_bonus_cap_per_year_and_stars() -> None:
    honour = fact("honour", 2, scheme=DATANG)  # 10 in one month
    months = {
        1: score_month(scheme=DATANG, entries=[honour]),
        2: score_month(scheme=DATANG, entries=[honour]),
    }
    year = score_year(scheme=DATANG, months=months, democratic_review=D(80), eligible_months=2)
    assert year.bonus == 10 and year.bonus_cap_applied
    # 20 × 0.8 + 80 × 0.2 + 10 = 42: below the 合格线, no star.
    assert year.score == 42
    assert star_for(scheme=DATANG, score=year.score) is None
    assert star_for(scheme=DATANG, score=D(95)).name == "五星党员"
    assert star_for(scheme=DATANG, score=D("84.99")).stars == 3
    assert star_for(scheme=DATANG, score=None) is None


def test_star_criteria_must_all_be_met() -> None:
    scheme = load_scheme(
        """
code: stars
name: 星级
level: branch
dimensions: [{code: base, name: 基础, max: 100}]
indicators:
  - {code: c1, name: 一, dimension: base, kind: score, nature: must, points: 50, source: automatic}
  - {code: c2, name: 二, dimension: base, kind: score, nature: must, points: 50, source: automatic}
period: {base_cap: 100}
stars:
  - {stars: 5, name: 标杆级, required: [c1, c2], min_score: 90}
  - {stars: 4, name: 先进级, required: [c1, c2]}
  - {stars: 3, name: 达标级, required: [c1]}
"""
    )
    assert star_for(scheme=scheme, score=D(95), met={"c1", "c2"}).name == "标杆级"
    assert star_for(scheme=scheme, score=D(80), met={"c1", "c2"}).name == "先进级"
    assert star_for(scheme=scheme, score=D(99), met={"c1"}).name == "达标级"
    assert star_for(scheme=scheme, score=D(99), met={"c2"}) is None


def test_competition_ranking() -> None:
    scores = {"a": D(98), "b": D(95), "c": D(95), "d": D(90), "e": None}
    assert competition_rank(scores) == {"a": 1, "b": 2, "c": 2, "d": 4, "e": None}


@given(st.dictionaries(st.integers(), st.one_of(st.none(), st.integers(0, 5).map(D))))
def test_competition_rank_counts_strictly_higher_scores(scores: dict[int, Decimal | None]) -> None:
    ranks = competition_rank(scores)
    for key, score in scores.items():
        if score is None:
            assert ranks[key] is None
        else:
            assert ranks[key] == 1 + sum(1 for s in scores.values() if s is not None and s > score)


QUOTA_SCHEME = load_scheme(
    """
code: quota
name: 名额
level: member
dimensions: [{code: base, name: 基础, max: 100}]
indicators:
  - {code: x, name: 项, dimension: base, kind: score, nature: must, points: 1, source: automatic}
period: {base_cap: 100}
tiers:
  - {name: 优秀, quota: 1/3}
  - {name: 合格, min_score: 60}
  - {name: 后进}
"""
)


def test_tiers_respect_quota_with_ties_at_the_boundary() -> None:
    scores = {"a": 100, "b": 99, "c": 98, "d": 98, "e": 97, "f": 90, "g": 70, "h": 50, "i": 40}
    tiers = assign_tiers(scheme=QUOTA_SCHEME, ranked={k: D(v) for k, v in scores.items()})
    # 9 members: at most 3 优秀. a and b fit; c and d tie for the third seat, so neither gets it
    # and 优秀 closes with 2 — e, with a lower score, must not overtake them.
    assert tiers == {
        "a": "优秀",
        "b": "优秀",
        "c": "合格",
        "d": "合格",
        "e": "合格",
        "f": "合格",
        "g": "合格",
        "h": "后进",
        "i": "后进",
    }
    assert assign_tiers(scheme=QUOTA_SCHEME, ranked={"v": None, "a": D(90)}) == {
        "v": None,
        "a": "合格",  # floor(1/3 × 1) = 0 seats
    }


@given(
    st.dictionaries(st.integers(), st.one_of(st.none(), st.integers(0, 100).map(D)), max_size=30)
)
def test_tier_properties(scores: dict[int, Decimal | None]) -> None:
    tiers = assign_tiers(scheme=QUOTA_SCHEME, ranked=scores)
    scored = [k for k, s in scores.items() if s is not None]
    assert sum(1 for k in scored if tiers[k] == "优秀") <= len(scored) // 3
    order = [t.name for t in QUOTA_SCHEME.tiers]
    for a in scored:
        for b in scored:
            if scores[a] == scores[b]:
                assert tiers[a] == tiers[b]
            if scores[a] > scores[b]:
                assert order.index(tiers[a]) <= order.index(tiers[b])
    assert all(tiers[k] is None for k, s in scores.items() if s is None)


def test_branch_average() -> None:
    assert branch_average([D(90), D(95), None, D("92.5")]) == D("92.50")
    assert branch_average([D(1), D(1), D(2)]) == D("1.33")
    assert branch_average([None]) is None


ROWS = [
    BoardRow("a", "甲", D(98), 1),
    BoardRow("b", "乙", D(95), 2),
    BoardRow("c", "丙", D(95), 2),
    BoardRow("d", "丁", D(80), 4),
    BoardRow("e", "戊", None, None),
]


def test_visible_board_modes() -> None:
    off = visible_board(mode=RankingMode.off, rows=ROWS, viewer_key="d")
    assert off.rows == () and off.own == ROWS[3] and off.average is None and off.members is None

    top = visible_board(mode=RankingMode.top_n, rows=ROWS, viewer_key="d", n=2)
    assert [r.key for r in top.rows] == ["a", "b", "c"]  # the tie at rank 2 is shown whole
    assert top.own == ROWS[3] and top.average is None

    agg = visible_board(mode=RankingMode.aggregates, rows=ROWS, viewer_key="e")
    assert agg.rows == () and agg.own == ROWS[4]
    assert (agg.members, agg.average) == (5, D("92.00"))

    full = visible_board(mode=RankingMode.full, rows=list(reversed(ROWS)), viewer_key="x")
    # Ordered by rank, unranked last; equal ranks keep the order they were given in.
    assert [r.key for r in full.rows] == ["a", "c", "b", "d", "e"]
    assert full.own is None and full.members == 5

    with pytest.raises(ValueError, match="n >= 1"):
        visible_board(mode=RankingMode.top_n, rows=ROWS, viewer_key="a")


def test_unknown_indicator_in_entries_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown indicator"):
        score_month(scheme=XINLUO, entries=[EntryFact("nope", D(1), DAY)])
