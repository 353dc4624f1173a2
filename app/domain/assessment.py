"""Turning a month score into ledger entries: what the ledger already gives each dimension, how
far the scheme's assessment indicators can take it, and the entries a wanted score needs.

The ledger stays the only source of scores: a self score or a secretary's score per dimension
is the ledger's score plus a whole number of units of the dimension's assessment indicator
(`evaluation.assessment` in the scheme), projected here with `score_month` exactly as the month
close will count them, caps and clamps included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from app.domain.evaluation import EvaluationRefused, Limit
from app.domain.scheme import Scheme
from app.domain.scoring import EntryFact, MonthScore, score_month


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass(frozen=True)
class Basis:
    """What a member's month is scored from: approved facts so far, under one scheme."""

    scheme: Scheme
    facts: tuple[EntryFact, ...]
    # The day added units are dated: any day of the month scores the same.
    day: date
    year_to_date: Mapping[str, Decimal] = field(default_factory=dict)

    def score(self, extra: Mapping[str, int] | None = None) -> MonthScore:
        """The month as it stands, or with `extra` units of indicators added."""
        added = [
            EntryFact(code, self.scheme.indicator_by_code[code].points * count, self.day)
            for code, count in (extra or {}).items()
        ]
        return score_month(scheme=self.scheme, entries=[*self.facts, *added],
                           year_to_date=self.year_to_date)


def dimension_scores(score: MonthScore) -> dict[str, Decimal]:
    """Scores of the top-level dimensions, by code."""
    return {d.code: d.score for d in score.dimensions}


def points_before_veto(score: MonthScore) -> Decimal:
    """Base plus bonus: what a change of points moves, even in a vetoed month."""
    return score.base + score.bonus


def _max_units(scheme: Scheme) -> dict[str, int]:
    # Enough units to fill the whole dimension: caps and clamps then say what really counts.
    maxima = {d.code: d.max for d in scheme.dimensions}
    return {
        code: math.ceil(maxima[dim] / scheme.indicator_by_code[code].points)
        for dim, code in scheme.evaluation.assessment.items()
    }


def limits(basis: Basis) -> dict[str, Limit]:
    """Per dimension: the ledger's score, and the most the assessment indicator can make of it."""
    ledger = dimension_scores(basis.score())
    high = dimension_scores(basis.score(_max_units(basis.scheme)))
    assessed = basis.scheme.evaluation.assessment
    return {code: Limit(score, high[code] if code in assessed else score)
            for code, score in ledger.items()}


@dataclass(frozen=True)
class Plan:
    """The assessment units a wanted score needs, and the month as it will then stand."""

    units: dict[str, int]
    score: MonthScore


def plan_dimensions(basis: Basis, targets: Mapping[str, Decimal]) -> Plan:
    """The units that give each dimension in `targets` exactly that score, or a refusal."""
    scheme = basis.scheme
    names = scheme.dimension_names
    ledger = dimension_scores(basis.score())
    unknown = sorted(set(targets) - set(ledger))
    if unknown:
        raise EvaluationRefused(f"方案中没有维度“{'、'.join(unknown)}”")
    units: dict[str, int] = {}
    for code, target in targets.items():
        delta = target - ledger[code]
        if delta == 0:
            continue
        indicator = scheme.indicator_by_code.get(scheme.evaluation.assessment.get(code, ""))
        if indicator is None:
            raise EvaluationRefused(f"{names[code]}按台账计分（{_text(ledger[code])} 分），"
                                    "不设综合评分")
        if delta < 0:
            raise EvaluationRefused(f"{names[code]}不能低于台账已记的 {_text(ledger[code])} 分；"
                                    "扣分请记入相应的扣分项")
        count = delta / indicator.points
        if count != count.to_integral_value():
            raise EvaluationRefused(f"{names[code]}的综合评分以 {_text(indicator.points)} 分为单位")
        units[indicator.code] = int(count)
    projected = basis.score(units)
    reached = dimension_scores(projected)
    for code, target in targets.items():
        if reached[code] != target:
            high = limits(basis)[code].high
            raise EvaluationRefused(f"{names[code]}最多可评 {_text(high)} 分")
    return Plan(units, projected)


def plan_total(basis: Basis, total: Decimal) -> Plan:
    """The units that give the month exactly `total` through the scheme's one assessment item."""
    (code,) = basis.scheme.evaluation.assessment
    now = basis.score()
    if now.total is None:
        raise EvaluationRefused("该党员本月被一票否决，不计积分，无法评总分")
    high = basis.score(_max_units(basis.scheme)).total
    assert high is not None
    if not now.total <= total <= high:
        raise EvaluationRefused(f"总分只能评 {_text(now.total)}–{_text(high)} 分")
    target = dimension_scores(now)[code] + total - now.total
    plan = plan_dimensions(basis, {code: target})
    if plan.score.total != total:
        raise EvaluationRefused(f"按方案上限，总分无法恰好评为 {_text(total)} 分")
    return plan
