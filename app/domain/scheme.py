"""Points scheme (积分方案) format: frozen pydantic models loaded from YAML, plus validation."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from app.domain.vocab import BranchCategory, Labelled, Role

CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
Code = Annotated[str, Field(pattern=CODE_PATTERN, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
LeaveKindCode = Literal["sick", "personal", "official"]


class Level(Labelled):
    """Whom a scheme scores."""

    member = "member"
    branch = "branch"


Level._labels = {"member": "党员", "branch": "党支部"}


class IndicatorKind(Labelled):
    """评分项 / 加分项 / 扣分项 / 否决项."""

    score = "score"
    bonus = "bonus"
    deduction = "deduction"
    veto = "veto"


IndicatorKind._labels = {
    "score": "评分项",
    "bonus": "加分项",
    "deduction": "扣分项",
    "veto": "否决项",
}


class Nature(Labelled):
    """必须做 / 鼓励做 / 禁止做."""

    must = "must"
    encouraged = "encouraged"
    forbidden = "forbidden"


Nature._labels = {"must": "必须做", "encouraged": "鼓励做", "forbidden": "禁止做"}


class Source(Labelled):
    """Where an entry comes from."""

    automatic = "automatic"
    declared = "declared"
    assessed = "assessed"


Source._labels = {"automatic": "系统自动", "declared": "党员申报", "assessed": "组织评定"}


class Baseline(Labelled):
    """What a dimension holds at the start of each month before entries are applied."""

    zero = "zero"
    full = "full"


Baseline._labels = {"zero": "积分累加", "full": "满分扣减"}


class DeductionMode(Labelled):
    """Where a deduction is charged."""

    dimension = "dimension"
    base = "base"


DeductionMode._labels = {"dimension": "在所属维度内扣减", "base": "从基础分总分扣减"}


class RankingMode(Labelled):
    """How much of a board others may see (policy against 滥用排名)."""

    off = "off"
    top_n = "top_n"
    aggregates = "aggregates"
    full = "full"


RankingMode._labels = {
    "off": "不排名",
    "top_n": "仅显示前N名",
    "aggregates": "仅显示汇总",
    "full": "完整排名",
}


class VetoEffect(Labelled):
    """What a veto leaves as the period's score."""

    none = "none"
    zero = "zero"


VetoEffect._labels = {"none": "不体现积分", "zero": "清零"}


class ScoringMode(Labelled):
    """How the secretary's monthly score (综合评分) is given."""

    dimension = "dimension"
    total = "total"


ScoringMode._labels = {"dimension": "按维度评分", "total": "评总分"}


def _parse_fraction(value: Any) -> Any:
    # Quotas are written as "1/3", "10%" or 0.1; a YAML float arrives here as a Decimal.
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return Fraction(value.strip()[:-1]) / 100
        except (ValueError, ZeroDivisionError):
            return value  # left for pydantic to reject as not a valid fraction
    if isinstance(value, Decimal):
        return Fraction(value)
    return value


Quota = Annotated[Fraction, BeforeValidator(_parse_fraction)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubDimension(_Frozen):
    """A part of a dimension with its own maximum, e.g. 工作业绩 10 within 发挥作用合格."""

    code: Code
    name: Name
    max: Decimal = Field(gt=0)
    description: str = ""


class Dimension(_Frozen):
    """A scoring dimension (维度/类别) with a monthly maximum."""

    code: Code
    name: Name
    max: Decimal = Field(gt=0)
    baseline: Baseline = Baseline.zero
    description: str = ""
    subdimensions: tuple[SubDimension, ...] = ()


class Indicator(_Frozen):
    """One thing a member (or branch) is scored on."""

    code: Code
    name: Name
    dimension: Code | None = None
    kind: IndicatorKind
    nature: Nature
    points: Decimal
    cap_per_month: Decimal | None = Field(default=None, gt=0)
    cap_per_year: Decimal | None = Field(default=None, gt=0)
    source: Source
    evidence_required: bool = False
    awarders: tuple[Role, ...] = ()
    applies_to_categories: tuple[BranchCategory, ...] = ()
    description: str = ""


class BonusRules(_Frozen):
    """The bonus pool kept apart from the base (e.g. 荣誉奖励加分, 正向累加不封顶)."""

    name: Name = "加分项"
    cap_per_month: Decimal | None = Field(default=None, gt=0)
    cap_per_year: Decimal | None = Field(default=None, gt=0)


class PeriodRules(_Frozen):
    """How a month's base and bonus are formed."""

    base_cap: Decimal = Field(gt=0)
    deductions: DeductionMode = DeductionMode.dimension
    bonus: BonusRules = BonusRules()


class AnnualWeights(_Frozen):
    """年度积分 = 月度平均基础分 × w1 + 年度民主评议分 × w2 + 加分 × w3."""

    monthly_average_base: Decimal = Field(default=Decimal(1), ge=0, le=1)
    democratic_review: Decimal = Field(default=Decimal(0), ge=0, le=1)
    bonus: Decimal = Field(default=Decimal(1), ge=0)


class Grade(_Frozen):
    """A grade reached at or above `min`; the last grade has no `min` and catches the rest."""

    min: Decimal | None = None
    name: Name


class Tier(_Frozen):
    """A rank tier filled best-first, at most `quota` of the scored members, from `min_score`."""

    name: Name
    quota: Quota | None = Field(default=None, gt=0, le=1)
    min_score: Decimal | None = None


class StarLevel(_Frozen):
    """A star level: reached when the score and every required criterion are met."""

    stars: int = Field(ge=1, le=5)
    name: Name
    min_score: Decimal | None = None
    required: tuple[Code, ...] = ()


class Ranking(_Frozen):
    """Board visibility; a member always sees their own row."""

    mode: RankingMode = RankingMode.off
    n: int | None = Field(default=None, ge=1)


class VetoRules(_Frozen):
    """What a veto (一票否决) does."""

    period_score: VetoEffect = VetoEffect.none
    disqualify_year: bool = True


class AttendanceRules(_Frozen):
    """Which automatic indicators an activity's final attendance records (None: nothing)."""

    present: Code | None = None
    # Recorded on top of `present` for a late check-in.
    late: Code | None = None
    absent: Code | None = None
    # Kinds of approved leave that excuse an absence: sick, personal, official.
    excused_leave: tuple[LeaveKindCode, ...] = ("sick", "personal", "official")


class EvaluationRules(_Frozen):
    """The monthly evaluation (一月一初评): self-evaluation window, scoring and objections.

    The self-evaluation opens on `opens_day` of the month and closes at the end of
    `deadline_day` of the next month (both local dates). The secretary's score is recorded
    under the `assessment` indicator of each dimension (a 月度评定 item of the dimension or of
    one of its sub-dimensions), on top of what the ledger already holds.
    """

    opens_day: int = Field(default=25, ge=1, le=28)
    deadline_day: int = Field(default=5, ge=1, le=28)
    # A score further than this from the member's self score needs a written reason.
    score_margin: Decimal = Field(default=Decimal(2), ge=0)
    objection_days: int = Field(default=3, ge=1, le=30)
    scoring: ScoringMode = ScoringMode.dimension
    assessment: dict[Code, Code] = Field(default_factory=dict)
    # Automatic indicators recorded when the self-evaluation is confirmed on time / late.
    on_time: Code | None = None
    late: Code | None = None


class Scheme(_Frozen):
    """A complete, validated points scheme."""

    code: Code
    name: Name
    level: Level
    description: str = ""
    source: str = ""
    dimensions: tuple[Dimension, ...] = Field(min_length=1)
    indicators: tuple[Indicator, ...] = Field(min_length=1)
    period: PeriodRules
    annual: AnnualWeights = AnnualWeights()
    grades: tuple[Grade, ...] = ()
    tiers: tuple[Tier, ...] = ()
    stars: tuple[StarLevel, ...] = ()
    ranking: Ranking = Ranking()
    veto: VetoRules = VetoRules()
    attendance: AttendanceRules = AttendanceRules()
    evaluation: EvaluationRules = EvaluationRules()

    @cached_property
    def indicator_by_code(self) -> dict[str, Indicator]:
        """Indicators keyed by code."""
        return {i.code: i for i in self.indicators}

    @cached_property
    def dimension_names(self) -> dict[str, str]:
        """Names of dimensions and sub-dimensions keyed by code."""
        names = {}
        for d in self.dimensions:
            names[d.code] = d.name
            names.update({s.code: s.name for s in d.subdimensions})
        return names

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Scheme:
        problems = _check(self)
        if problems:
            source = (info.context or {}).get("source", "<方案>")
            raise SchemeError([Problem(source, path, reason) for path, reason in problems])
        return self


@dataclass(frozen=True)
class Problem:
    """One reason a scheme file was rejected."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '(文件)'}: {self.reason}"


class SchemeError(Exception):
    """A scheme was rejected; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class PresetInfo:
    """A scheme shipped with the package."""

    name: str
    title: str
    source_seed: str


def _two_places(value: Decimal) -> bool:
    return value == value.quantize(Decimal("0.01"))


_TWO_PLACES = "最多保留两位小数"


def _check(s: Scheme) -> list[tuple[str, str]]:
    """Cross-field rules; returns (path, reason) pairs."""
    out: list[tuple[str, str]] = []
    seen_dims: dict[str, str] = {}
    for di, d in enumerate(s.dimensions):
        for path, code in [(f"dimensions[{di}]", d.code)] + [
            (f"dimensions[{di}].subdimensions[{si}]", sub.code)
            for si, sub in enumerate(d.subdimensions)
        ]:
            if code in seen_dims:
                out.append((f"{path}.code", f"代码“{code}”重复（另见 {seen_dims[code]}）"))
            else:
                seen_dims[code] = path
        maxima = [(f"dimensions[{di}].max", d.max)] + [
            (f"dimensions[{di}].subdimensions[{si}].max", sub.max)
            for si, sub in enumerate(d.subdimensions)
        ]
        out.extend((path, _TWO_PLACES) for path, m in maxima if not _two_places(m))
        sub_total = sum((sub.max for sub in d.subdimensions), Decimal(0))
        if sub_total > d.max:
            out.append(
                (
                    f"dimensions[{di}].subdimensions",
                    f"各子维度满分合计 {sub_total}，超过了该维度满分 {d.max}",
                )
            )
    dims_total = sum((d.max for d in s.dimensions), Decimal(0))
    if s.period.base_cap > dims_total:
        out.append(
            (
                "period.base_cap",
                f"基础分上限 {s.period.base_cap} 无法达到：各维度满分合计只有 {dims_total}",
            )
        )

    seen_ind: dict[str, int] = {}
    used_dims: set[str] = set()
    for ii, ind in enumerate(s.indicators):
        p = f"indicators[{ii}]"
        if ind.code in seen_ind:
            out.append(
                (
                    f"{p}.code",
                    f"代码“{ind.code}”重复（另见 indicators[{seen_ind[ind.code]}]）",
                )
            )
        else:
            seen_ind[ind.code] = ii
        if ind.dimension is None:
            if ind.kind in (IndicatorKind.score, IndicatorKind.deduction):
                out.append((f"{p}.dimension", f"{ind.kind.label}必须指定所属维度"))
        elif ind.dimension not in seen_dims:
            out.append((f"{p}.dimension", f"未知的维度“{ind.dimension}”"))
        else:
            used_dims.add(ind.dimension)
        sign_rule = {
            IndicatorKind.score: (ind.points > 0, "评分项的分值必须为正数"),
            IndicatorKind.bonus: (ind.points > 0, "加分项的分值必须为正数"),
            IndicatorKind.deduction: (ind.points < 0, "扣分项的分值必须为负数"),
            IndicatorKind.veto: (ind.points == 0, "否决项的分值必须为 0"),
        }[ind.kind]
        if not sign_rule[0]:
            out.append((f"{p}.points", sign_rule[1]))
        if not _two_places(ind.points):
            out.append((f"{p}.points", _TWO_PLACES))
        if ind.nature is Nature.forbidden and ind.kind not in (
            IndicatorKind.deduction,
            IndicatorKind.veto,
        ):
            out.append((f"{p}.kind", "“禁止做”的事项只能是扣分项或否决项"))
        for field in ("cap_per_month", "cap_per_year"):
            cap = getattr(ind, field)
            if cap is None:
                continue
            if ind.kind is IndicatorKind.veto:
                out.append((f"{p}.{field}", "否决项不能设置上限"))
            elif cap < abs(ind.points):
                out.append((f"{p}.{field}", f"上限 {cap} 小于单次分值（{ind.points}）"))
            elif not _two_places(cap):
                out.append((f"{p}.{field}", _TWO_PLACES))
        if (
            ind.cap_per_month is not None
            and ind.cap_per_year is not None
            and ind.cap_per_year < ind.cap_per_month
        ):
            out.append((f"{p}.cap_per_year", "年度上限小于月度上限"))
        if ind.source is not Source.automatic and not ind.awarders:
            out.append((f"{p}.awarders", f"来源为“{ind.source.label}”的指标至少要指定一个记分角色"))
        if len(set(ind.awarders)) != len(ind.awarders):
            out.append((f"{p}.awarders", "有角色重复列出"))
        if len(set(ind.applies_to_categories)) != len(ind.applies_to_categories):
            out.append((f"{p}.applies_to_categories", "有支部类别重复列出"))
        if ind.applies_to_categories and s.level is not Level.branch:
            out.append((f"{p}.applies_to_categories", "只有党支部层级的方案才能设置适用类别"))

    for di, d in enumerate(s.dimensions):
        for si, sub in enumerate(d.subdimensions):
            if sub.code not in used_dims:
                path = f"dimensions[{di}].subdimensions[{si}]"
                out.append((path, f"子维度“{sub.code}”下没有任何指标"))
        if d.code not in used_dims and not any(sub.code in used_dims for sub in d.subdimensions):
            out.append((f"dimensions[{di}]", f"维度“{d.code}”下没有任何指标"))

    w = s.annual
    if w.monthly_average_base + w.democratic_review != 1:
        out.append(
            (
                "annual",
                "月度平均基础分与年度民主评议分的权重之和必须为 1"
                f"（目前为 {w.monthly_average_base + w.democratic_review}）",
            )
        )

    out.extend(_check_ordered(s.grades, "grades", "min", catch_all=True, strict=True))
    out.extend(_check_ordered(s.tiers, "tiers", "min_score", catch_all=False, strict=False))
    if s.tiers and (s.tiers[-1].quota is not None or s.tiers[-1].min_score is not None):
        out.append(
            (
                f"tiers[{len(s.tiers) - 1}]",
                "最后一档须容纳其余所有人，不能设置 quota 或 min_score",
            )
        )

    star_numbers = [lv.stars for lv in s.stars]
    if star_numbers != sorted(set(star_numbers), reverse=True):
        out.append(("stars", "星级须按星数从多到少排列，每个星数只出现一次"))
    for li, lv in enumerate(s.stars):
        if lv.min_score is None and not lv.required:
            out.append((f"stars[{li}]", "每个星级须设置最低分 min_score 或必备条件 required"))
        for ri, code in enumerate(lv.required):
            if code not in seen_ind:
                out.append((f"stars[{li}].required[{ri}]", f"未知的指标“{code}”"))

    for field in ("present", "late", "absent"):
        code = getattr(s.attendance, field)
        if code is not None and code not in seen_ind:
            out.append((f"attendance.{field}", f"未知的指标“{code}”"))
        elif code is not None and s.indicator_by_code[code].source is not Source.automatic:
            out.append((f"attendance.{field}", f"指标“{code}”的来源须为自动（automatic）"))
    if len(set(s.attendance.excused_leave)) != len(s.attendance.excused_leave):
        out.append(("attendance.excused_leave", "有请假类型重复列出"))

    out.extend(_check_evaluation(s))

    if s.ranking.mode is RankingMode.top_n and s.ranking.n is None:
        out.append(("ranking.n", "排名方式为 top_n 时须设置 n"))
    if s.ranking.mode is not RankingMode.top_n and s.ranking.n is not None:
        out.append(("ranking.n", "只有排名方式为 top_n 时才能设置 n"))
    return out


def _check_evaluation(s: Scheme) -> list[tuple[str, str]]:
    """The evaluation section names existing indicators of the right kind and source."""
    out: list[tuple[str, str]] = []
    rules = s.evaluation
    parts = {d.code: {d.code, *(sub.code for sub in d.subdimensions)} for d in s.dimensions}
    for dim, code in rules.assessment.items():
        path = f"evaluation.assessment.{dim}"
        ind = s.indicator_by_code.get(code)
        if dim not in parts:
            out.append((path, f"“{dim}”不是顶层维度的代码"))
        elif ind is None:
            out.append((path, f"未知的指标“{code}”"))
        elif ind.dimension not in parts[dim]:
            out.append((path, f"指标“{code}”不属于维度“{dim}”"))
        elif ind.kind is not IndicatorKind.score or ind.source is not Source.assessed:
            out.append((path, f"指标“{code}”须为组织评定（assessed）的评分项"))
        elif ind.evidence_required:
            out.append((path, f"指标“{code}”用于综合评分，不能要求佐证材料"))
    if rules.scoring is ScoringMode.total and len(rules.assessment) != 1:
        out.append(("evaluation.assessment", "评总分时须恰好指定一个综合评分指标"))
    for field, kind in (("on_time", IndicatorKind.score), ("late", IndicatorKind.deduction)):
        code = getattr(rules, field)
        ind = s.indicator_by_code.get(code) if code is not None else None
        if code is not None and ind is None:
            out.append((f"evaluation.{field}", f"未知的指标“{code}”"))
        elif ind is not None and (ind.kind is not kind or ind.source is not Source.automatic):
            out.append((f"evaluation.{field}",
                        f"指标“{code}”须为系统自动（automatic）的{kind.label}"))
    return out


def _check_ordered(
    items: tuple[Any, ...], section: str, field: str, *, catch_all: bool, strict: bool
) -> list[tuple[str, str]]:
    """Names unique; thresholds descending (strictly if `strict`); optional trailing catch-all."""
    out: list[tuple[str, str]] = []
    names = [i.name for i in items]
    for idx, name in enumerate(names):
        if name in names[:idx]:
            out.append((f"{section}[{idx}].name", f"名称“{name}”重复"))
    thresholds = [getattr(i, field) for i in items]
    last = len(items) - 1
    for idx, value in enumerate(thresholds):
        if value is None:
            if catch_all and idx != last:
                out.append((f"{section}[{idx}].{field}", f"只有最后一项可以省略 {field}"))
            continue
        earlier = [t for t in thresholds[:idx] if t is not None]
        if earlier and (value >= earlier[-1] if strict else value > earlier[-1]):
            out.append(
                (
                    f"{section}[{idx}].{field}",
                    f"{value} {'必须低于' if strict else '不能高于'}上一项（{earlier[-1]}）",
                )
            )
    if catch_all and items and thresholds[last] is not None:
        out.append(
            (
                f"{section}[{last}].{field}",
                f"最后一项须省略 {field}，用于兜底其余所有分数",
            )
        )
    return out


class _WordedYamlError(yaml.constructor.ConstructorError):
    """A YAML problem whose `problem` text is already worded for users."""


class _Loader(yaml.SafeLoader):
    """SafeLoader reading floats as exact Decimals and rejecting duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, refusing a key given twice (YAML would silently keep the last)."""
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | Decimal | None):
                raise _WordedYamlError(None, None, "键必须是名称，不能是列表或映射",
                                         key_node.start_mark)
            if key in keys:
                raise _WordedYamlError(None, None, f"键“{key}”重复", key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    try:
        value = Decimal(str(loader.construct_scalar(node)).replace("_", ""))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        # .nan and .inf are YAML floats but no scheme number; refuse them where they stand.
        raise _WordedYamlError(None, None, "必须是有限的数字", node.start_mark)
    return value


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# Reasons for pydantic error types; `{name}` is filled from the error's ctx.
_REASONS = {
    "missing": "缺少必填项",
    "extra_forbidden": "无法识别的字段，请检查拼写",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than": "必须小于 {lt}",
    "less_than_equal": "不能大于 {le}",
    "multiple_of": "必须是 {multiple_of} 的整数倍",
    "finite_number": "必须是有限的数值",
    "string_type": "必须是文字",
    "string_too_short": "至少需要 {min_length} 个字符",
    "string_too_long": "不能超过 {max_length} 个字符",
    "string_pattern_mismatch": "格式不正确，应符合 {pattern}",
    "decimal_parsing": "必须是数字",
    "decimal_type": "必须是数字",
    "decimal_max_digits": "最多只能有 {max_digits} 位数字",
    "decimal_max_places": "最多保留 {decimal_places} 位小数",
    "decimal_whole_digits": "整数部分最多 {whole_digits} 位",
    "float_parsing": "必须是数字",
    "float_type": "必须是数字",
    "int_parsing": "必须是整数",
    "int_type": "必须是整数",
    "int_from_float": "必须是整数，不能带小数",
    "bool_parsing": "只能填写 true 或 false",
    "bool_type": "只能填写 true 或 false",
    "fraction_parsing": "必须是比例，例如 1/3、10% 或 0.1",
    "fraction_type": "必须是比例，例如 1/3、10% 或 0.1",
    "enum": "只能填写 {expected}",
    "literal_error": "只能填写 {expected}",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多只能有 {max_length} 项",
    "list_type": "必须是列表",
    "tuple_type": "必须是列表",
    "set_type": "必须是列表",
    "frozen_set_type": "必须是列表",
    "dict_type": "必须是“名称: 值”形式的映射",
    "model_type": "必须是“名称: 值”形式的映射",
    "model_attributes_type": "必须是“名称: 值”形式的映射",
    "none_required": "必须留空",
}

# Enums whose values (and Chinese labels) may appear in an `enum` error's expected list.
_CHOICE_ENUMS: tuple[type[Labelled], ...] = (
    Level,
    IndicatorKind,
    Nature,
    Source,
    Baseline,
    DeductionMode,
    RankingMode,
    VetoEffect,
    BranchCategory,
    Role,
)


def _choices_text(expected: str) -> str:
    """Pydantic's "'a', 'b' or 'c'" as "a（甲）、b（乙）或 c（丙）" when the enum is known."""
    values = re.findall(r"'([^']*)'", expected)
    if not values:
        return expected.replace(" or ", " 或 ")
    enum = next((c for c in _CHOICE_ENUMS if [m.value for m in c] == values), None)
    parts = [f"{v}（{enum(v).label}）" if enum else f"“{v}”" for v in values]
    last = "或 " if enum else "或"
    return parts[0] if len(parts) == 1 else "、".join(parts[:-1]) + last + parts[-1]


def _ctx_text(key: str, value: Any) -> str:
    if key == "expected":
        return _choices_text(str(value))
    if isinstance(value, Decimal):
        return _decimal_text(value)
    return str(value)


def _reason(error: Any) -> str:
    """Chinese reason for one pydantic error; pydantic's own message kept for unmapped types."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind.endswith("_type") and error.get("input", "") is None:
        return "不能为空"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "不能为空"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "至少需要一项"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == CODE_PATTERN:
        return "只能由小写英文字母、数字和下划线组成，且以字母开头"
    if kind == "decimal_max_places" and ctx.get("decimal_places") in (0, 2):
        return "必须是整数" if ctx["decimal_places"] == 0 else _TWO_PLACES
    template = _REASONS.get(kind)
    if template is not None:
        try:
            return template.format(**{k: _ctx_text(k, v) for k, v in ctx.items()})
        except (KeyError, IndexError):
            pass
    return f"取值不符合要求（{error['msg']}）"


# Common PyYAML problems; `{0}` is the pattern's first group.
_YAML_PROBLEMS: tuple[tuple[str, str], ...] = (
    (r"found character '\\t' that cannot start any token", "不能用制表符（Tab）缩进，请改用空格"),
    (
        r"found character '(.+)' that cannot start any token",
        "这里不能出现字符“{0}”，可给这段文字加上引号",
    ),
    (
        r"mapping values are not allowed here",
        "这里不应出现冒号，请检查缩进，或给含冒号的文字加上引号",
    ),
    (r"could not find expected ':'", "缺少冒号“:”"),
    (r"expected ',' or '\]'", "方括号没有闭合，或列表各项之间缺少逗号"),
    (r"expected ',' or '\}'", "花括号没有闭合，或各项之间缺少逗号"),
    (r"found unexpected end of stream", "文件意外结束，可能有引号没有闭合"),
    (r"expected <block end>", "缩进有误，请检查这一行与上文是否对齐"),
    (r"found undefined alias '(.+)'", "引用了未定义的锚点“{0}”"),
)


def _yaml_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, _WordedYamlError):
        return f"YAML 格式有误：{problem}"
    for pattern, reason in _YAML_PROBLEMS:
        found = re.search(pattern, problem)
        if found:
            return "YAML 格式有误：" + reason.format(*found.groups())
    return f"YAML 格式有误（{problem}）"


def load_scheme(path_or_text: str | os.PathLike[str], *, source_name: str | None = None) -> Scheme:
    """Load and validate a scheme from a file (a path, or a one-line .yaml name) or YAML text."""
    if isinstance(path_or_text, os.PathLike) or (
        "\n" not in path_or_text
        and (path_or_text.endswith((".yaml", ".yml")) or Path(path_or_text).is_file())
    ):
        path = Path(path_or_text)
        text = path.read_text(encoding="utf-8")
        source = source_name or str(path)
    else:
        text = str(path_or_text)
        source = source_name or "<方案文本>"
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"第 {mark.line + 1} 行" if mark else ""
        raise SchemeError([Problem(source, where, _yaml_reason(exc))]) from None
    if not isinstance(data, dict):
        reason = "文件内容必须是 YAML 映射，即按“名称: 内容”逐项写出各部分"
        raise SchemeError([Problem(source, "", reason)])
    try:
        return Scheme.model_validate(data, context={"source": source})
    except ValidationError as exc:
        problems = [
            Problem(source, _path(e["loc"]), _reason(e)) for e in exc.errors(include_url=False)
        ]
        raise SchemeError(problems) from None


def _preset_files() -> dict[str, Any]:
    root = resources.files("app.presets")
    return {
        entry.name.removesuffix(".yaml"): entry
        for entry in root.iterdir()
        if entry.name.endswith(".yaml")
    }


def preset_text(name: str) -> str:
    """The YAML text of a preset shipped in `app.presets`, comments included."""
    files = _preset_files()
    if name not in files:
        raise ValueError(f"没有名为“{name}”的内置方案，可选：{'、'.join(sorted(files))}")
    return files[name].read_text(encoding="utf-8")


def load_preset(name: str) -> Scheme:
    """Load a preset shipped in `app.presets` by name, e.g. "xinluo"."""
    return load_scheme(preset_text(name), source_name=f"preset:{name}")


def list_presets() -> list[PresetInfo]:
    """The presets shipped with the package, sorted by name."""
    out = []
    for name in sorted(_preset_files()):
        scheme = load_preset(name)
        out.append(PresetInfo(name=name, title=scheme.name, source_seed=scheme.source))
    return out


def _plain(value: Any) -> Any:
    """Turn a model dump into plain data with canonical scalars."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    return value


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


class _DecimalText(str):
    """Marks a canonical decimal so the dumper writes it as a bare number."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_decimal_text(dumper: yaml.SafeDumper, data: _DecimalText) -> yaml.ScalarNode:
    tag = "tag:yaml.org,2002:float" if "." in data else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, str(data))


_Dumper.add_representer(_DecimalText, _represent_decimal_text)


def _yaml_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _yaml_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_yaml_ready(v) for v in value]
    if isinstance(value, Decimal):
        return _DecimalText(_decimal_text(value))
    return _plain(value)


def scheme_to_yaml(scheme: Scheme) -> str:
    """Dump a scheme as YAML that `load_scheme` reads back to an equal scheme."""
    data = _yaml_ready(scheme.model_dump(mode="python", exclude_defaults=True))
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def scheme_fingerprint(scheme: Scheme) -> str:
    """SHA-256 of a canonical JSON dump; equal schemes give equal fingerprints."""
    canonical = json.dumps(
        _plain(scheme.model_dump(mode="python")),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Labels of the fields diff_schemes reports, by dumped key.
_FIELD_LABELS = {
    "code": "代码",
    "name": "名称",
    "level": "评价对象",
    "description": "说明",
    "source": "来源",
    "max": "满分",
    "baseline": "计分方式",
    "dimension": "所属维度",
    "kind": "类型",
    "nature": "性质",
    "points": "分值",
    "cap_per_month": "月度上限",
    "cap_per_year": "年度上限",
    "evidence_required": "须提供佐证材料",
    "awarders": "记分角色",
    "applies_to_categories": "适用支部类别",
    "base_cap": "基础分上限",
    "deductions": "扣分方式",
    "monthly_average_base": "月度平均基础分",
    "democratic_review": "年度民主评议分",
    "bonus": "加分",
    "mode": "显示方式",
    "n": "显示人数",
    "period_score": "当期积分",
    "disqualify_year": "取消年度评优资格",
    "opens_day": "自评开放日",
    "deadline_day": "自评截止日（次月）",
    "score_margin": "须说明理由的评分差额",
    "objection_days": "公示异议期（天）",
    "scoring": "评分方式",
    "assessment": "综合评分指标",
    "on_time": "按时自评记分指标",
    "late": "逾期自评扣分指标",
}

# Enum-valued fields, shown by their Chinese labels.
_FIELD_ENUMS: dict[str, type[Labelled]] = {
    "level": Level,
    "baseline": Baseline,
    "kind": IndicatorKind,
    "nature": Nature,
    "source": Source,
    "awarders": Role,
    "applies_to_categories": BranchCategory,
    "deductions": DeductionMode,
    "mode": RankingMode,
    "period_score": VetoEffect,
    "scoring": ScoringMode,
}


def _fmt(value: Any, key: str = "") -> str:
    if value is None or value == [] or value == "":
        return "无"
    if isinstance(value, list):
        return "、".join(_fmt(v, key) for v in value)
    if isinstance(value, dict):
        return "、".join(f"{k}={v}" for k, v in value.items()) or "无"
    if isinstance(value, bool):
        return "是" if value else "否"
    enum = _FIELD_ENUMS.get(key)
    if enum is not None and value in {m.value for m in enum}:
        return enum(value).label
    return str(value)


def _field_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{label}：{_FIELD_LABELS.get(key, key)} {_fmt(old.get(key), key)} → "
        f"{_fmt(new.get(key), key)}"
        for key in dict.fromkeys([*old, *new])
        if old.get(key) != new.get(key)
    ]


def _keyed_diff(
    kind: str, old: list[dict[str, Any]], new: list[dict[str, Any]], owner: str = ""
) -> list[str]:
    before = {item["code"]: item for item in old}
    after = {item["code"]: item for item in new}
    lines = [f"{owner}删除{kind} {c}（{before[c]['name']}）" for c in before if c not in after]
    lines += [f"{owner}新增{kind} {c}（{after[c]['name']}）" for c in after if c not in before]
    for code in [c for c in before if c in after]:
        o, n = dict(before[code]), dict(after[code])
        o_subs, n_subs = o.pop("subdimensions", None), n.pop("subdimensions", None)
        lines += _field_changes(f"{owner}{kind} {code}", o, n)
        if o_subs is not None and n_subs is not None:
            lines += _keyed_diff("子维度", o_subs, n_subs, owner=f"{kind} {code} ")
    return lines


def _list_text(items: list[str]) -> str:
    return "；".join(items) or "无"


def _grades_text(grades: list[dict[str, Any]]) -> str:
    return _list_text(
        [f"≥{g['min']} {g['name']}" if g["min"] is not None else f"其余{g['name']}" for g in grades]
    )


def _tiers_text(tiers: list[dict[str, Any]]) -> str:
    out = []
    for t in tiers:
        terms = []
        if t["quota"] is not None:
            terms.append(f"名额不超过 {t['quota']}")
        if t["min_score"] is not None:
            terms.append(f"不低于 {t['min_score']} 分")
        out.append(t["name"] + (f"（{'，'.join(terms)}）" if terms else ""))
    return _list_text(out)


def _stars_text(stars: list[dict[str, Any]]) -> str:
    out = []
    for s in stars:
        terms = []
        if s["min_score"] is not None:
            terms.append(f"不低于 {s['min_score']} 分")
        if s["required"]:
            terms.append(f"须达成 {'、'.join(s['required'])}")
        out.append(f"{s['stars']}星 {s['name']}" + (f"（{'，'.join(terms)}）" if terms else ""))
    return _list_text(out)


def diff_schemes(old: Scheme, new: Scheme) -> list[str]:
    """Human-readable lines (Chinese) describing what changed from `old` to `new`."""
    a, b = _plain(old.model_dump(mode="python")), _plain(new.model_dump(mode="python"))
    lines: list[str] = []
    lines += _field_changes(
        "方案",
        {k: a[k] for k in ("code", "name", "level", "description", "source")},
        {k: b[k] for k in ("code", "name", "level", "description", "source")},
    )
    lines += _keyed_diff("维度", a["dimensions"], b["dimensions"])
    lines += _keyed_diff("指标", a["indicators"], b["indicators"])
    bonus_a, bonus_b = a["period"].pop("bonus"), b["period"].pop("bonus")
    lines += _field_changes("月度规则", a["period"], b["period"])
    lines += _field_changes("加分规则", bonus_a, bonus_b)
    lines += _field_changes("年度权重", a["annual"], b["annual"])
    for section, label, text in (
        ("grades", "等级", _grades_text),
        ("tiers", "档次", _tiers_text),
        ("stars", "星级", _stars_text),
    ):
        if a[section] != b[section]:
            lines.append(f"{label}：{text(a[section])} → {text(b[section])}")
    lines += _field_changes("排名", a["ranking"], b["ranking"])
    lines += _field_changes("一票否决", a["veto"], b["veto"])
    lines += _field_changes("月度评价", a["evaluation"], b["evaluation"])
    return lines


__all__ = [
    "AnnualWeights",
    "Baseline",
    "BonusRules",
    "BranchCategory",
    "DeductionMode",
    "Dimension",
    "EvaluationRules",
    "Grade",
    "Indicator",
    "IndicatorKind",
    "Level",
    "Nature",
    "PeriodRules",
    "PresetInfo",
    "Problem",
    "Ranking",
    "RankingMode",
    "Role",
    "Scheme",
    "SchemeError",
    "ScoringMode",
    "Source",
    "StarLevel",
    "SubDimension",
    "Tier",
    "VetoEffect",
    "VetoRules",
    "diff_schemes",
    "list_presets",
    "load_preset",
    "load_scheme",
    "scheme_fingerprint",
    "scheme_to_yaml",
]
