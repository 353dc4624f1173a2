"""Scheme format: loading, validation problems with paths, YAML round trip, fingerprint, diff."""

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.domain.scheme import (
    BranchCategory,
    IndicatorKind,
    Level,
    Nature,
    Scheme,
    SchemeError,
    diff_schemes,
    load_scheme,
    scheme_fingerprint,
    scheme_to_yaml,
)

SMALL = """
code: sample
name: 示例积分方案
level: member
dimensions:
  - code: political
    name: 政治合格
    max: 50
  - code: role
    name: 发挥作用合格
    max: 50
    subdimensions:
      - {code: work, name: 工作业绩, max: 30}
      - {code: innovation, name: 参与创新, max: 20}
indicators:
  - code: attendance_present
    name: 参加组织生活
    dimension: political
    kind: score
    nature: must
    points: 5
    cap_per_month: 20
    source: automatic
  - code: attendance_absent
    name: 无故缺席组织生活
    dimension: political
    kind: deduction
    nature: must
    points: -5
    source: automatic
  - code: kpi
    name: 完成业绩指标
    dimension: work
    kind: score
    nature: must
    points: 1
    cap_per_month: 30
    source: assessed
    awarders: [branch_secretary]
  - code: proposal
    name: 合理化建议被采纳
    dimension: innovation
    kind: score
    nature: encouraged
    points: 2.5
    cap_per_year: 20
    source: declared
    evidence_required: true
    awarders: [branch_secretary]
  - code: honour
    name: 获得表彰
    kind: bonus
    nature: encouraged
    points: 5
    source: declared
    awarders: [committee_staff]
period:
  base_cap: 100
annual:
  monthly_average_base: 0.9
  democratic_review: 0.1
grades:
  - {min: 90, name: 合格}
  - {name: 不合格}
tiers:
  - {name: 优秀, quota: 1/3}
  - {name: 其他}
"""


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(SchemeError) as caught:
        load_scheme(text, source_name="bad.yaml")
    assert all(p.file == "bad.yaml" for p in caught.value.problems)
    return {p.path: p.reason for p in caught.value.problems}


def test_small_scheme_loads_with_decimal_points_and_fraction_quota() -> None:
    scheme = load_scheme(SMALL)
    assert scheme.level is Level.member
    assert scheme.indicator_by_code["proposal"].points == Decimal("2.5")
    assert scheme.tiers[0].quota == Fraction(1, 3)
    assert scheme.annual.monthly_average_base == Decimal("0.9")
    assert scheme.dimension_names["work"] == "工作业绩"


def test_chinese_labels_are_accepted_and_available() -> None:
    text = SMALL.replace("kind: bonus", "kind: 加分项").replace("nature: must", "nature: 必须做")
    scheme = load_scheme(text)
    assert scheme.indicator_by_code["honour"].kind is IndicatorKind.bonus
    assert IndicatorKind.veto.label == "否决项"
    assert Nature.forbidden.label == "禁止做"
    assert BranchCategory.non_public.label == "非公改制类"


@pytest.mark.parametrize("written", ["1/3", "33.3%", 0.25])
def test_quota_forms(written: object) -> None:
    scheme = load_scheme(SMALL.replace("quota: 1/3", f"quota: {written}"))
    assert scheme.tiers[0].quota == {"1/3": Fraction(1, 3), "33.3%": Fraction(333, 1000)}.get(
        str(written), Fraction(1, 4)
    )


def test_cross_reference_problems_are_reported_together_with_paths() -> None:
    text = (
        SMALL.replace("dimension: work", "dimension: wrok")
        .replace("code: proposal", "code: kpi")
        .replace("max: 30}", "max: 40}")
        .replace("{min: 90, name: 合格}", "{min: 90, name: 合格}\n  - {min: 95, name: 优秀}")
        .replace("points: -5", "points: 5")
    )
    problems = problems_of(text)
    assert problems["indicators[2].dimension"] == "未知的维度“wrok”"
    assert "代码“kpi”重复" in problems["indicators[3].code"]
    assert "合计 60" in problems["dimensions[1].subdimensions"]
    assert "必须低于上一项" in problems["grades[1].min"]
    assert "必须为负数" in problems["indicators[1].points"]
    assert len(problems) >= 5


def test_structural_problems_are_reported_together_with_paths() -> None:
    text = (
        SMALL.replace("cap_per_month: 20", "cap_per_month: -3")
        .replace("kind: score\n    nature: encouraged", "kind: praise\n    nature: encouraged")
        .replace("evidence_required: true", "evidence_requird: true")
        .replace("    name: 参加组织生活\n", "")
    )
    problems = problems_of(text)
    assert "必须大于 0" in problems["indicators[0].cap_per_month"]
    assert problems["indicators[0].name"] == "缺少必填项"
    assert "score（评分项）" in problems["indicators[3].kind"]
    assert problems["indicators[3].evidence_requird"] == "无法识别的字段，请检查拼写"


def test_more_rules() -> None:
    text = (
        SMALL.replace("base_cap: 100", "base_cap: 120")
        .replace("democratic_review: 0.1", "democratic_review: 0.2")
        .replace("{name: 不合格}", "{min: 60, name: 不合格}")
        .replace("{name: 其他}", "{name: 其他, quota: 1/2}")
        .replace("awarders: [committee_staff]", "awarders: []")
        .replace("points: 2.5", "points: 2.555")
        + "ranking:\n  mode: top_n\n"
    )
    problems = problems_of(text)
    assert "无法达到" in problems["period.base_cap"]
    assert "之和必须为 1" in problems["annual"]
    assert "最后一项须省略 min" in problems["grades[1].min"]
    assert "最后一档" in problems["tiers[1]"]
    assert "记分角色" in problems["indicators[4].awarders"]
    assert "最多保留两位小数" in problems["indicators[3].points"]
    assert problems["ranking.n"] == "排名方式为 top_n 时须设置 n"


def test_forbidden_score_and_small_cap_and_unused_dimension() -> None:
    text = SMALL.replace(
        "nature: encouraged\n    points: 2.5", "nature: forbidden\n    points: 2.5"
    )
    text = text.replace("cap_per_month: 30", "cap_per_month: 0.5")
    text = text.replace("dimension: political\n    kind: deduction", "kind: deduction")
    problems = problems_of(text)
    assert "禁止做" in problems["indicators[3].kind"]
    assert "小于单次分值" in problems["indicators[2].cap_per_month"]
    assert "必须指定所属维度" in problems["indicators[1].dimension"]


def test_dimension_without_indicators_is_rejected() -> None:
    text = SMALL.replace("dimension: innovation", "dimension: work")
    assert "没有任何指标" in problems_of(text)["dimensions[1].subdimensions[1]"]


def test_yaml_errors() -> None:
    assert "YAML 格式有误" in problems_of("code: [unclosed\n")["第 2 行"]
    duplicate = problems_of(SMALL + "code: again\n")
    last_line = f"第 {SMALL.count(chr(10)) + 1} 行"
    assert "键“code”重复" in duplicate[last_line]
    assert "YAML 映射" in problems_of("- just\n- a list\n")[""]


def test_load_from_path_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scheme.yaml"
    path.write_text(SMALL.replace("dimension: work", "dimension: nowhere"), encoding="utf-8")
    with pytest.raises(SchemeError) as caught:
        load_scheme(path)
    assert caught.value.problems[0].file == str(path)
    assert str(path) in str(caught.value)
    path.write_text(SMALL, encoding="utf-8")
    assert load_scheme(str(path)) == load_scheme(SMALL)


def test_direct_construction_is_validated_and_models_are_frozen() -> None:
    scheme = load_scheme(SMALL)
    data = scheme.model_dump()
    data["indicators"][0]["dimension"] = "nowhere"
    with pytest.raises(SchemeError):
        Scheme.model_validate(data)
    with pytest.raises(ValidationError):
        scheme.name = "changed"  # type: ignore[misc]


def test_branch_level_scheme_with_stars_and_categories() -> None:
    # Seed 002 style: hard criteria per star level, all must be met; seed 004 categories.
    text = """
code: branch_sample
name: 党支部星级评定示例
level: branch
dimensions:
  - {code: organisation, name: 组织建设, max: 60}
  - {code: special, name: 专项指标, max: 40}
indicators:
  - {code: c01, name: 按期换届, dimension: organisation, kind: score, nature: must, points: 10,
     source: assessed, awarders: [committee_staff]}
  - {code: c02, name: 三会一课按要求召开, dimension: organisation, kind: score, nature: must,
     points: 10, source: automatic}
  - {code: output, name: 完成产量计划, dimension: special, kind: score, nature: must, points: 20,
     source: assessed, awarders: [committee_staff], applies_to_categories: [production, 市场经营类]}
  - {code: veto_safety, name: 发生重大安全事故, kind: veto, nature: forbidden, points: 0,
     source: assessed, awarders: [committee_staff]}
period: {base_cap: 100}
stars:
  - {stars: 5, name: 标杆级, required: [c01, c02, output], min_score: 90}
  - {stars: 4, name: 先进级, required: [c01, c02]}
  - {stars: 3, name: 达标级, required: [c01]}
"""
    scheme = load_scheme(text)
    assert scheme.level is Level.branch
    assert scheme.indicators[2].applies_to_categories == (
        BranchCategory.production,
        BranchCategory.market,
    )
    assert [s.name for s in scheme.stars] == ["标杆级", "先进级", "达标级"]
    assert scheme.stars[0].required == ("c01", "c02", "output")

    bad = text.replace("required: [c01]}", "required: [c99]}").replace("市场经营类", "生产类")
    problems = problems_of(bad)
    assert problems["stars[2].required[0]"] == "未知的指标“c99”"
    assert problems["indicators[2].applies_to_categories"] == "有支部类别重复列出"
    member_level = problems_of(text.replace("level: branch", "level: member"))
    assert "只有党支部层级" in member_level["indicators[2].applies_to_categories"]


def test_yaml_round_trip_and_fingerprint() -> None:
    scheme = load_scheme(SMALL)
    again = load_scheme(scheme_to_yaml(scheme))
    assert again == scheme
    assert scheme_fingerprint(again) == scheme_fingerprint(scheme)
    same_value = load_scheme(SMALL.replace("max: 50\n  - code: role", "max: 50.0\n  - code: role"))
    assert scheme_fingerprint(same_value) == scheme_fingerprint(scheme)
    changed = load_scheme(SMALL.replace("points: 2.5", "points: 3"))
    assert scheme_fingerprint(changed) != scheme_fingerprint(scheme)
    assert len(scheme_fingerprint(scheme)) == 64


def test_diff_schemes_lines() -> None:
    old = load_scheme(SMALL)
    new_text = (
        SMALL.replace("points: 2.5", "points: 3")
        .replace("cap_per_month: 20", "cap_per_month: 25")
        .replace("max: 50\n  - code: role", "max: 45\n  - code: role")
        .replace("monthly_average_base: 0.9", "monthly_average_base: 0.8")
        .replace("democratic_review: 0.1", "democratic_review: 0.2")
        .replace("{min: 90, name: 合格}", "{min: 85, name: 合格}")
        .replace("base_cap: 100", "base_cap: 95")
    )
    new_text = new_text.replace(
        "  - code: honour\n    name: 获得表彰",
        "  - code: honour_city\n    name: 获得市级表彰",
    )
    lines = diff_schemes(old, load_scheme(new_text))
    assert lines == [
        "维度 political：满分 50 → 45",
        "删除指标 honour（获得表彰）",
        "新增指标 honour_city（获得市级表彰）",
        "指标 attendance_present：月度上限 20 → 25",
        "指标 proposal：分值 2.5 → 3",
        "月度规则：基础分上限 100 → 95",
        "年度权重：月度平均基础分 0.9 → 0.8",
        "年度权重：年度民主评议分 0.1 → 0.2",
        "等级：≥90 合格；其余不合格 → ≥85 合格；其余不合格",
    ]
    assert diff_schemes(old, old) == []


def test_example_in_docs_is_valid() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "schemes.md").read_text(encoding="utf-8")
    example = doc.split("## A complete small example")[1].split("```yaml\n")[1].split("```")[0]
    scheme = load_scheme(example, source_name="docs/schemes.md")
    assert scheme.code == "sample" and len(scheme.indicators) == 7


@pytest.mark.parametrize(
    ("text", "reason"),
    [("code: x\nperiod: {base_cap: .nan}\n", "必须是有限的数字"),
     ("code: x\nperiod: {base_cap: .inf}\n", "必须是有限的数字"),
     ("? [a, b]\n: 1\n", "键必须是名称"), ("? {a: 1}\n: 2\n", "键必须是名称")],
)
def test_odd_yaml_values_are_refused_with_a_line_not_a_crash(text: str, reason: str) -> None:
    with pytest.raises(SchemeError) as info:
        load_scheme(text)
    (problem,) = info.value.problems
    assert problem.path.startswith("第 ") and reason in problem.reason
