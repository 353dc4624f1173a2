"""Period scoring: pure functions over approved ledger facts, in exact Decimal arithmetic.

Every reported figure is rounded once, ROUND_HALF_UP to 2 places; a figure derived from other
reported figures (the annual score from the monthly average) is computed from their rounded
values, so a member can redo any calculation by hand from what they are shown.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from app.domain.scheme import (
    Baseline,
    DeductionMode,
    Indicator,
    IndicatorKind,
    RankingMode,
    Scheme,
    StarLevel,
    VetoEffect,
)

K = TypeVar("K", bound=Hashable)
ZERO = Decimal(0)
CENT = Decimal("0.01")


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


def _limit(value: Decimal, cap: Decimal | None) -> Decimal:
    """Limit the magnitude of a signed total, so a cap binds reversals as well as awards."""
    return value if cap is None else _clamp(value, -cap, cap)


@dataclass(frozen=True)
class EntryFact:
    """One approved ledger entry as scoring sees it."""

    indicator_code: str
    points: Decimal
    occurred_on: date
    # A reversal carries its original's negated points (a reversal is never itself reversed).
    # The flag is what lets a zero-point veto entry be withdrawn.
    reversal: bool = False


@dataclass(frozen=True)
class IndicatorLine:
    """How one indicator contributed to a month."""

    code: str
    name: str
    kind: IndicatorKind
    dimension: str | None
    raw: Decimal
    counted: Decimal
    cap_applied: bool
    entries: int


@dataclass(frozen=True)
class DimensionLine:
    """How one dimension or sub-dimension was formed: baseline + counted items, then clamped."""

    code: str
    name: str
    max: Decimal
    baseline: Decimal
    raw: Decimal
    score: Decimal
    clamped: bool
    bonus: Decimal
    subdimensions: tuple[DimensionLine, ...] = ()


@dataclass(frozen=True)
class MonthScore:
    """A member's month: base and bonus as computed, and the total the veto rules leave."""

    base: Decimal
    bonus: Decimal
    total: Decimal | None
    vetoed: bool
    base_cap_applied: bool
    bonus_cap_applied: bool
    dimensions: tuple[DimensionLine, ...]
    indicators: tuple[IndicatorLine, ...]
    vetoes: tuple[str, ...] = ()

    @property
    def effective_base(self) -> Decimal:
        """Base that counts toward quarter and year: a vetoed month counts 0."""
        return ZERO if self.vetoed else self.base

    @property
    def effective_bonus(self) -> Decimal:
        """Bonus that counts toward quarter and year: a vetoed month counts 0."""
        return ZERO if self.vetoed else self.bonus


@dataclass(frozen=True)
class QuarterSummary:
    """一季一小结: average base and summed bonus over the months given."""

    months: int
    average_base: Decimal
    bonus: Decimal
    total: Decimal | None
    vetoed_months: int


@dataclass(frozen=True)
class YearScore:
    """年终总评: the annual score by the scheme's formula."""

    average_base: Decimal
    democratic_review: Decimal | None
    bonus: Decimal
    score: Decimal | None
    vetoed: bool
    eligible_months: int
    scored_months: int
    bonus_cap_applied: bool
    review_missing: bool


def counted_to_date(months: Iterable[MonthScore]) -> dict[str, Decimal]:
    """Per-indicator counted points over earlier months, to pass as `year_to_date`."""
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for month in months:
        for line in month.indicators:
            out[line.code] += line.counted
    return dict(out)


def _indicator_lines(
    scheme: Scheme, entries: Iterable[EntryFact], year_to_date: Mapping[str, Decimal]
) -> tuple[IndicatorLine, ...]:
    raw: dict[str, Decimal] = defaultdict(lambda: ZERO)
    count: dict[str, int] = defaultdict(int)
    for fact in entries:
        if fact.indicator_code not in scheme.indicator_by_code:
            raise ValueError(f"entry for unknown indicator {fact.indicator_code!r}")
        raw[fact.indicator_code] += fact.points
        count[fact.indicator_code] += -1 if fact.reversal else 1
    lines = []
    for ind in scheme.indicators:  # scheme order keeps breakdowns stable and readable
        if ind.code not in raw:
            continue
        monthly = _limit(raw[ind.code], ind.cap_per_month)
        counted = monthly
        if ind.cap_per_year is not None:
            before = year_to_date.get(ind.code, ZERO)
            counted = _limit(before + monthly, ind.cap_per_year) - before
        lines.append(
            IndicatorLine(
                code=ind.code,
                name=ind.name,
                kind=ind.kind,
                dimension=ind.dimension,
                raw=raw[ind.code],
                counted=counted,
                cap_applied=counted != raw[ind.code],
                entries=count[ind.code],
            )
        )
    return tuple(lines)


def _in_base_dimension(ind: Indicator, mode: DeductionMode) -> bool:
    if ind.kind is IndicatorKind.score:
        return True
    return ind.kind is IndicatorKind.deduction and mode is DeductionMode.dimension


def _formed(
    code: str,
    name: str,
    maximum: Decimal,
    baseline: Decimal,
    raw: Decimal,
    bonus: Decimal,
    subs: tuple[DimensionLine, ...] = (),
) -> DimensionLine:
    score = _clamp(raw, ZERO, maximum)
    return DimensionLine(
        code=code,
        name=name,
        max=maximum,
        baseline=baseline,
        raw=raw,
        score=score,
        clamped=score != raw,
        bonus=bonus,
        subdimensions=subs,
    )


def _dimension_lines(scheme: Scheme, lines: tuple[IndicatorLine, ...]) -> tuple[DimensionLine, ...]:
    mode = scheme.period.deductions
    base_sum: dict[str, Decimal] = defaultdict(lambda: ZERO)
    bonus_sum: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        ind = scheme.indicator_by_code[line.code]
        if line.dimension is None:
            continue
        if _in_base_dimension(ind, mode):
            base_sum[line.dimension] += line.counted
        elif ind.kind is IndicatorKind.bonus:
            bonus_sum[line.dimension] += line.counted

    out = []
    for d in scheme.dimensions:
        full = d.baseline is Baseline.full
        subs = tuple(
            _formed(
                s.code,
                s.name,
                s.max,
                s.max if full else ZERO,
                (s.max if full else ZERO) + base_sum[s.code],
                bonus_sum[s.code],
            )
            for s in d.subdimensions
        )
        # Points outside every sub-dimension start from the unallotted share of the maximum.
        direct_baseline = d.max - sum((s.max for s in d.subdimensions), ZERO) if full else ZERO
        raw = direct_baseline + base_sum[d.code] + sum((s.score for s in subs), ZERO)
        bonus = bonus_sum[d.code] + sum((s.bonus for s in subs), ZERO)
        out.append(_formed(d.code, d.name, d.max, d.max if full else ZERO, raw, bonus, subs))
    return tuple(out)


def score_month(
    *,
    scheme: Scheme,
    entries: Iterable[EntryFact],
    year_to_date: Mapping[str, Decimal] | None = None,
) -> MonthScore:
    """Score one member's month from approved entries; `year_to_date` enables yearly caps."""
    lines = _indicator_lines(scheme, entries, year_to_date or {})
    dims = _dimension_lines(scheme, lines)
    by_code = scheme.indicator_by_code

    positive = sum((d.score for d in dims), ZERO)
    base = min(positive, scheme.period.base_cap)
    if scheme.period.deductions is DeductionMode.base:
        # Deductions bite after the cap, so a member above the cap still feels them.
        deducted = sum(
            (ln.counted for ln in lines if by_code[ln.code].kind is IndicatorKind.deduction), ZERO
        )
        base = max(ZERO, base + deducted)
    base_cap_applied = positive > scheme.period.base_cap

    bonus_raw = sum(
        (ln.counted for ln in lines if by_code[ln.code].kind is IndicatorKind.bonus), ZERO
    )
    bonus_cap = scheme.period.bonus.cap_per_month
    bonus = bonus_raw if bonus_cap is None else min(bonus_raw, bonus_cap)

    # A veto stands while more of its entries are approved than reversed.
    vetoes = tuple(
        ln.code for ln in lines if by_code[ln.code].kind is IndicatorKind.veto and ln.entries > 0
    )
    total: Decimal | None = _round(base + bonus)
    if vetoes:
        total = None if scheme.veto.period_score is VetoEffect.none else _round(ZERO)
    return MonthScore(
        base=_round(base),
        bonus=_round(bonus),
        total=total,
        vetoed=bool(vetoes),
        base_cap_applied=base_cap_applied,
        bonus_cap_applied=bonus != bonus_raw,
        dimensions=tuple(_rounded_dimension(d) for d in dims),
        indicators=tuple(_rounded_indicator(ln) for ln in lines),
        vetoes=vetoes,
    )


def _rounded_indicator(line: IndicatorLine) -> IndicatorLine:
    return IndicatorLine(
        code=line.code,
        name=line.name,
        kind=line.kind,
        dimension=line.dimension,
        raw=_round(line.raw),
        counted=_round(line.counted),
        cap_applied=line.cap_applied,
        entries=line.entries,
    )


def _rounded_dimension(d: DimensionLine) -> DimensionLine:
    return DimensionLine(
        code=d.code,
        name=d.name,
        max=d.max,
        baseline=d.baseline,
        raw=_round(d.raw),
        score=_round(d.score),
        clamped=d.clamped,
        bonus=_round(d.bonus),
        subdimensions=tuple(_rounded_dimension(s) for s in d.subdimensions),
    )


def score_quarter(*, scheme: Scheme, months: Sequence[MonthScore]) -> QuarterSummary:
    """Summarise a quarter: average effective base, summed bonus, vetoed months."""
    if not months:
        raise ValueError("a quarter summary needs at least one month")
    average = _round(sum((m.effective_base for m in months), ZERO) / len(months))
    bonus = _round(sum((m.effective_bonus for m in months), ZERO))
    vetoed = sum(1 for m in months if m.vetoed)
    total = None if vetoed and scheme.veto.disqualify_year else _round(average + bonus)
    return QuarterSummary(
        months=len(months), average_base=average, bonus=bonus, total=total, vetoed_months=vetoed
    )


def score_year(
    *,
    scheme: Scheme,
    months: Mapping[int, MonthScore],
    democratic_review: Decimal | None,
    eligible_months: int,
) -> YearScore:
    """Annual score by the scheme's formula, averaging the base over eligible months only."""
    if not 1 <= eligible_months <= 12:
        raise ValueError("eligible_months must be between 1 and 12")
    if len(months) > eligible_months or any(not 1 <= m <= 12 for m in months):
        raise ValueError("months must be month numbers 1-12, no more than eligible_months")
    totals = counted_to_date(months.values())
    for code, counted in totals.items():
        cap = scheme.indicator_by_code[code].cap_per_year
        if cap is not None and abs(counted) > cap:
            raise ValueError(
                f"indicator {code!r} counts {counted} over the year, above its cap {cap}: "
                "score each month with year_to_date"
            )

    # A month the member was eligible for but that has no score counts 0; months before
    # joining are simply not eligible, so they do not drag the average down.
    average = _round(sum((m.effective_base for m in months.values()), ZERO) / eligible_months)
    bonus_raw = sum((m.effective_bonus for m in months.values()), ZERO)
    bonus_cap = scheme.period.bonus.cap_per_year
    bonus = _round(bonus_raw if bonus_cap is None else min(bonus_raw, bonus_cap))
    vetoed = any(m.vetoed for m in months.values())

    weights = scheme.annual
    review_missing = democratic_review is None and weights.democratic_review > 0
    if democratic_review is None:
        # Without a review the base carries the whole weight rather than scoring the review 0.
        weighted = average
    else:
        weighted = (
            average * weights.monthly_average_base + democratic_review * weights.democratic_review
        )
    score: Decimal | None = _round(weighted + bonus * weights.bonus)
    if vetoed and scheme.veto.disqualify_year:
        score = None
    return YearScore(
        average_base=average,
        democratic_review=democratic_review,
        bonus=bonus,
        score=score,
        vetoed=vetoed,
        eligible_months=eligible_months,
        scored_months=len(months),
        bonus_cap_applied=bonus != _round(bonus_raw),
        review_missing=review_missing,
    )


def grade_for(*, scheme: Scheme, score: Decimal | None) -> str | None:
    """The first grade whose minimum the score reaches; None for no score or no grades."""
    if score is None:
        return None
    for grade in scheme.grades:
        if grade.min is None or score >= grade.min:
            return grade.name
    return None


def star_for(
    *, scheme: Scheme, score: Decimal | None, met: Collection[str] = ()
) -> StarLevel | None:
    """The highest star level whose minimum score and every required criterion are met."""
    if score is None:
        return None
    for level in scheme.stars:
        if (level.min_score is None or score >= level.min_score) and set(level.required) <= set(
            met
        ):
            return level
    return None


def competition_rank(scores: Mapping[K, Decimal | None]) -> dict[K, int | None]:
    """Standard competition ranking (1, 2, 2, 4), highest first; None stays unranked."""
    ordered = sorted((s for s in scores.values() if s is not None), reverse=True)
    first_index: dict[Decimal, int] = {}
    for index, value in enumerate(ordered):
        first_index.setdefault(value, index + 1)
    return {key: None if s is None else first_index[s] for key, s in scores.items()}


def assign_tiers(*, scheme: Scheme, ranked: Mapping[K, Decimal | None]) -> dict[K, str | None]:
    """Assign rank tiers best-first under quotas of floor(quota × scored members)."""
    # Tie rule: equal scores always share a tier. When a whole tie group does not fit in what is
    # left of a tier's quota, the group goes to the next tier and that tier closes (no lower score
    # may take the seats left), so a quota is never exceeded and a lower score never gets a
    # better tier than a higher one. Members without a score get no tier.
    result: dict[K, str | None] = dict.fromkeys(ranked)
    if not scheme.tiers:
        return result
    scored = [(s, k) for k, s in ranked.items() if s is not None]
    groups: dict[Decimal, list[K]] = defaultdict(list)
    for score, key in scored:
        groups[score].append(key)
    seats = [None if t.quota is None else math.floor(t.quota * len(scored)) for t in scheme.tiers]
    tier_index = 0
    for score in sorted(groups, reverse=True):
        members = groups[score]
        while True:
            tier = scheme.tiers[tier_index]
            fits = seats[tier_index] is None or len(members) <= seats[tier_index]
            if fits and (tier.min_score is None or score >= tier.min_score):
                break
            tier_index += 1  # the last tier takes everyone, as scheme validation guarantees
        if seats[tier_index] is not None:
            seats[tier_index] -= len(members)
        for key in members:
            result[key] = scheme.tiers[tier_index].name
    return result


def branch_average(scores: Iterable[Decimal | None]) -> Decimal | None:
    """Mean of the members' scores, leaving out those without a score; None if none."""
    present = [s for s in scores if s is not None]
    return _round(sum(present, ZERO) / len(present)) if present else None


@dataclass(frozen=True)
class BoardRow:
    """One member on a board; `rank` comes from `competition_rank`."""

    key: Hashable
    name: str
    score: Decimal | None
    rank: int | None


@dataclass(frozen=True)
class Board:
    """What a given viewer may see of a board."""

    mode: RankingMode
    rows: tuple[BoardRow, ...]
    own: BoardRow | None
    members: int | None
    average: Decimal | None


def visible_board(
    *, mode: RankingMode, rows: Sequence[BoardRow], viewer_key: Hashable, n: int | None = None
) -> Board:
    """Cut a ranked board down to what the ranking mode lets the viewer see."""
    # off: own row only. top_n: rows ranked n or better (a tie at rank n is shown whole rather
    # than cut arbitrarily; never a bottom list) plus the own row. aggregates: count and average
    # plus the own row. full: everything.
    ordered = sorted(rows, key=lambda r: (r.rank is None, r.rank or 0))
    own = next((r for r in rows if r.key == viewer_key), None)
    members = len(rows)
    average = branch_average(r.score for r in rows)
    if mode is RankingMode.off:
        return Board(mode=mode, rows=(), own=own, members=None, average=None)
    if mode is RankingMode.aggregates:
        return Board(mode=mode, rows=(), own=own, members=members, average=average)
    if mode is RankingMode.top_n:
        if n is None or n < 1:
            raise ValueError("top_n needs n >= 1")
        top = tuple(r for r in ordered if r.rank is not None and r.rank <= n)
        return Board(mode=mode, rows=top, own=own, members=None, average=None)
    return Board(mode=mode, rows=tuple(ordered), own=own, members=members, average=average)
