"""Points scheme (积分方案) format: frozen pydantic models loaded from YAML, plus validation."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

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


def _parse_fraction(value: Any) -> Any:
    # Quotas are written as "1/3", "10%" or 0.1; a YAML float arrives here as a Decimal.
    if isinstance(value, str) and value.strip().endswith("%"):
        return Fraction(value.strip()[:-1]) / 100
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
            source = (info.context or {}).get("source", "<scheme>")
            raise SchemeError([Problem(source, path, reason) for path, reason in problems])
        return self


@dataclass(frozen=True)
class Problem:
    """One reason a scheme file was rejected."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '(top)'}: {self.reason}"


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
                out.append((f"{path}.code", f"duplicate code {code!r} (also {seen_dims[code]})"))
            else:
                seen_dims[code] = path
        maxima = [(f"dimensions[{di}].max", d.max)] + [
            (f"dimensions[{di}].subdimensions[{si}].max", sub.max)
            for si, sub in enumerate(d.subdimensions)
        ]
        out.extend(
            (path, "use at most 2 decimal places") for path, m in maxima if not _two_places(m)
        )
        sub_total = sum((sub.max for sub in d.subdimensions), Decimal(0))
        if sub_total > d.max:
            out.append(
                (
                    f"dimensions[{di}].subdimensions",
                    f"sub-dimension maxima add up to {sub_total}, more than the dimension's "
                    f"max {d.max}",
                )
            )
    dims_total = sum((d.max for d in s.dimensions), Decimal(0))
    if s.period.base_cap > dims_total:
        out.append(
            (
                "period.base_cap",
                f"base cap {s.period.base_cap} can never be reached: dimension maxima add up "
                f"to {dims_total}",
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
                    f"duplicate code {ind.code!r} (also indicators[{seen_ind[ind.code]}])",
                )
            )
        else:
            seen_ind[ind.code] = ii
        if ind.dimension is None:
            if ind.kind in (IndicatorKind.score, IndicatorKind.deduction):
                out.append((f"{p}.dimension", f"a {ind.kind.value} indicator needs a dimension"))
        elif ind.dimension not in seen_dims:
            out.append((f"{p}.dimension", f"unknown dimension {ind.dimension!r}"))
        else:
            used_dims.add(ind.dimension)
        sign_rule = {
            IndicatorKind.score: (ind.points > 0, "must be positive for a score indicator"),
            IndicatorKind.bonus: (ind.points > 0, "must be positive for a bonus indicator"),
            IndicatorKind.deduction: (
                ind.points < 0,
                "must be negative for a deduction indicator",
            ),
            IndicatorKind.veto: (ind.points == 0, "must be 0 for a veto indicator"),
        }[ind.kind]
        if not sign_rule[0]:
            out.append((f"{p}.points", sign_rule[1]))
        if not _two_places(ind.points):
            out.append((f"{p}.points", "use at most 2 decimal places"))
        if ind.nature is Nature.forbidden and ind.kind not in (
            IndicatorKind.deduction,
            IndicatorKind.veto,
        ):
            out.append((f"{p}.kind", "a forbidden (禁止做) item can only be a deduction or a veto"))
        for field in ("cap_per_month", "cap_per_year"):
            cap = getattr(ind, field)
            if cap is None:
                continue
            if ind.kind is IndicatorKind.veto:
                out.append((f"{p}.{field}", "a veto indicator cannot have a cap"))
            elif cap < abs(ind.points):
                out.append(
                    (f"{p}.{field}", f"cap {cap} is smaller than one occurrence ({ind.points})")
                )
            elif not _two_places(cap):
                out.append((f"{p}.{field}", "use at most 2 decimal places"))
        if (
            ind.cap_per_month is not None
            and ind.cap_per_year is not None
            and ind.cap_per_year < ind.cap_per_month
        ):
            out.append((f"{p}.cap_per_year", "yearly cap is smaller than the monthly cap"))
        if ind.source is not Source.automatic and not ind.awarders:
            out.append(
                (f"{p}.awarders", f"a {ind.source.value} indicator needs at least one awarder role")
            )
        if len(set(ind.awarders)) != len(ind.awarders):
            out.append((f"{p}.awarders", "a role is listed twice"))
        if len(set(ind.applies_to_categories)) != len(ind.applies_to_categories):
            out.append((f"{p}.applies_to_categories", "a category is listed twice"))
        if ind.applies_to_categories and s.level is not Level.branch:
            out.append((f"{p}.applies_to_categories", "only branch-level schemes have categories"))

    for di, d in enumerate(s.dimensions):
        for si, sub in enumerate(d.subdimensions):
            if sub.code not in used_dims:
                path = f"dimensions[{di}].subdimensions[{si}]"
                out.append((path, f"sub-dimension {sub.code!r} has no indicators"))
        if d.code not in used_dims and not any(sub.code in used_dims for sub in d.subdimensions):
            out.append((f"dimensions[{di}]", f"dimension {d.code!r} has no indicators"))

    w = s.annual
    if w.monthly_average_base + w.democratic_review != 1:
        out.append(
            (
                "annual",
                "monthly_average_base and democratic_review weights must add up to 1 "
                f"(they add up to {w.monthly_average_base + w.democratic_review})",
            )
        )

    out.extend(_check_ordered(s.grades, "grades", "min", catch_all=True, strict=True))
    out.extend(_check_ordered(s.tiers, "tiers", "min_score", catch_all=False, strict=False))
    if s.tiers and (s.tiers[-1].quota is not None or s.tiers[-1].min_score is not None):
        out.append(
            (
                f"tiers[{len(s.tiers) - 1}]",
                "the last tier must take everyone left: no quota, no min_score",
            )
        )

    star_numbers = [lv.stars for lv in s.stars]
    if star_numbers != sorted(set(star_numbers), reverse=True):
        out.append(("stars", "list star levels from most stars to fewest, each once"))
    for li, lv in enumerate(s.stars):
        if lv.min_score is None and not lv.required:
            out.append((f"stars[{li}]", "a star level needs a min_score or required criteria"))
        for ri, code in enumerate(lv.required):
            if code not in seen_ind:
                out.append((f"stars[{li}].required[{ri}]", f"unknown indicator {code!r}"))

    if s.ranking.mode is RankingMode.top_n and s.ranking.n is None:
        out.append(("ranking.n", "top_n ranking needs n"))
    if s.ranking.mode is not RankingMode.top_n and s.ranking.n is not None:
        out.append(("ranking.n", "n is only used with mode top_n"))
    return out


def _check_ordered(
    items: tuple[Any, ...], section: str, field: str, *, catch_all: bool, strict: bool
) -> list[tuple[str, str]]:
    """Names unique; thresholds descending (strictly if `strict`); optional trailing catch-all."""
    out: list[tuple[str, str]] = []
    names = [i.name for i in items]
    for idx, name in enumerate(names):
        if name in names[:idx]:
            out.append((f"{section}[{idx}].name", f"duplicate name {name!r}"))
    thresholds = [getattr(i, field) for i in items]
    last = len(items) - 1
    for idx, value in enumerate(thresholds):
        if value is None:
            if catch_all and idx != last:
                out.append((f"{section}[{idx}].{field}", f"only the last entry may omit {field}"))
            continue
        earlier = [t for t in thresholds[:idx] if t is not None]
        if earlier and (value >= earlier[-1] if strict else value > earlier[-1]):
            out.append(
                (
                    f"{section}[{idx}].{field}",
                    f"{value} must be {'lower than' if strict else 'at most'} the entry above "
                    f"({earlier[-1]})",
                )
            )
    if catch_all and items and thresholds[last] is not None:
        out.append(
            (
                f"{section}[{last}].{field}",
                f"the last entry must omit {field} so every score gets one",
            )
        )
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader reading floats as exact Decimals and rejecting duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, refusing a key given twice (YAML would silently keep the last)."""
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_REASONS = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (check the spelling)",
}


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
        source = source_name or "<text>"
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise SchemeError([Problem(source, where, f"not valid YAML: {reason}")]) from None
    if not isinstance(data, dict):
        raise SchemeError([Problem(source, "", "the file must be a YAML mapping of sections")])
    try:
        return Scheme.model_validate(data, context={"source": source})
    except ValidationError as exc:
        problems = [
            Problem(source, _path(e["loc"]), _REASONS.get(e["type"], e["msg"]))
            for e in exc.errors(include_url=False)
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


def _fmt(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _field_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{label}: {key} {_fmt(old.get(key))} → {_fmt(new.get(key))}"
        for key in dict.fromkeys([*old, *new])
        if old.get(key) != new.get(key)
    ]


def _keyed_diff(kind: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    before = {item["code"]: item for item in old}
    after = {item["code"]: item for item in new}
    lines = [f"{kind} removed: {c} ({before[c]['name']})" for c in before if c not in after]
    lines += [f"{kind} added: {c} ({after[c]['name']})" for c in after if c not in before]
    for code in [c for c in before if c in after]:
        o, n = dict(before[code]), dict(after[code])
        o_subs, n_subs = o.pop("subdimensions", None), n.pop("subdimensions", None)
        lines += _field_changes(f"{kind} {code}", o, n)
        if o_subs is not None and n_subs is not None:
            lines += _keyed_diff(f"sub-dimension of {code}", o_subs, n_subs)
    return lines


def _grades_text(grades: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"≥{g['min']} {g['name']}" if g["min"] is not None else f"else {g['name']}" for g in grades
    )


def diff_schemes(old: Scheme, new: Scheme) -> list[str]:
    """Human-readable lines describing what changed from `old` to `new`."""
    a, b = _plain(old.model_dump(mode="python")), _plain(new.model_dump(mode="python"))
    lines: list[str] = []
    for key in ("code", "name", "level", "description", "source"):
        if a[key] != b[key]:
            lines.append(f"scheme {key}: {_fmt(a[key])} → {_fmt(b[key])}")
    lines += _keyed_diff("dimension", a["dimensions"], b["dimensions"])
    lines += _keyed_diff("indicator", a["indicators"], b["indicators"])
    bonus_a, bonus_b = a["period"].pop("bonus"), b["period"].pop("bonus")
    lines += _field_changes("period", a["period"], b["period"])
    lines += _field_changes("bonus", bonus_a, bonus_b)
    lines += _field_changes("annual weights", a["annual"], b["annual"])
    if a["grades"] != b["grades"]:
        lines.append(f"grades: {_grades_text(a['grades'])} → {_grades_text(b['grades'])}")
    for section in ("tiers", "stars"):
        if a[section] != b[section]:
            lines.append(
                f"{section}: {json.dumps(a[section], ensure_ascii=False)} → "
                f"{json.dumps(b[section], ensure_ascii=False)}"
            )
    lines += _field_changes("ranking", a["ranking"], b["ranking"])
    lines += _field_changes("veto", a["veto"], b["veto"])
    return lines


__all__ = [
    "AnnualWeights",
    "Baseline",
    "BonusRules",
    "BranchCategory",
    "DeductionMode",
    "Dimension",
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
