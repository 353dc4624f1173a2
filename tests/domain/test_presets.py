"""Shipped presets load, validate and carry exactly the numbers and names their seeds state."""

from collections import Counter
from decimal import Decimal

import pytest

from app.domain.scheme import (
    Baseline,
    IndicatorKind,
    Nature,
    RankingMode,
    Scheme,
    Source,
    VetoEffect,
    list_presets,
    load_preset,
    load_scheme,
    scheme_to_yaml,
)

PRESETS = ["datang", "jiangzhong", "xinluo"]
ATTENDANCE_CODES = {"attendance_present", "attendance_absent", "self_evaluation_on_time"}


def maxima(scheme: Scheme) -> dict[str, Decimal]:
    out = {}
    for d in scheme.dimensions:
        out[d.name] = d.max
        out.update({f"{d.name}/{s.name}": s.max for s in d.subdimensions})
    return out


def test_list_presets() -> None:
    infos = list_presets()
    assert [p.name for p in infos] == PRESETS
    seeds = {p.name: p.source_seed for p in infos}
    assert seeds["xinluo"].startswith("seed 003")
    assert seeds["jiangzhong"].startswith("seed 000")
    assert seeds["datang"].startswith("seed 001")
    assert all(p.title for p in infos)


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="可选：datang、jiangzhong、xinluo"):
        load_preset("../xinluo")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trips_and_has_attendance_codes(name: str) -> None:
    scheme = load_preset(name)
    assert scheme.code == name
    assert load_scheme(scheme_to_yaml(scheme)) == scheme
    for code in ATTENDANCE_CODES:
        indicator = scheme.indicator_by_code[code]
        assert indicator.source is Source.automatic
    assert scheme.indicator_by_code["attendance_absent"].kind is IndicatorKind.deduction
    assert scheme.indicator_by_code["attendance_present"].kind is IndicatorKind.score


@pytest.mark.parametrize("name", PRESETS)
def test_every_base_dimension_can_reach_full_marks(name: str) -> None:
    # A scheme where doing everything right cannot reach the maximum would be unfair.
    scheme = load_preset(name)
    for d in scheme.dimensions:
        if d.baseline is Baseline.full:
            continue
        for part in d.subdimensions or (d,):
            reachable = sum(
                i.cap_per_month or Decimal(0)
                for i in scheme.indicators
                if i.dimension == part.code and i.kind is IndicatorKind.score
            )
            assert reachable >= part.max, (name, part.code)


def test_xinluo_numbers_from_seed_003() -> None:
    s = load_preset("xinluo")
    assert maxima(s) == {
        "政治合格": 25,
        "纪律合格": 25,
        "品德合格": 25,
        "发挥作用合格": 25,
        "发挥作用合格/工作业绩": 10,
        "发挥作用合格/参与创新": 5,
        "发挥作用合格/协同办事": 5,
        "发挥作用合格/临时任务响应": 5,
    }
    assert s.period.base_cap == 100
    assert len(s.indicators) == 39
    assert set(Counter(i.nature for i in s.indicators)) == set(Nature)
    assert {n.label for n in Nature} == {"必须做", "鼓励做", "禁止做"}
    assert all(d.baseline is Baseline.zero for d in s.dimensions)  # 积分累加

    assert s.period.bonus.name == "荣誉奖励加分"
    assert s.period.bonus.cap_per_month is None and s.period.bonus.cap_per_year is None
    honours = [i for i in s.indicators if i.kind is IndicatorKind.bonus]
    assert honours and all(i.cap_per_month is None and i.cap_per_year is None for i in honours)

    assert s.annual.monthly_average_base == Decimal("0.9")
    assert s.annual.democratic_review == Decimal("0.1")
    assert s.annual.bonus == 1
    assert [(g.min, g.name) for g in s.grades] == [
        (100, "优秀"),
        (90, "合格"),
        (80, "基本合格"),
        (None, "不合格"),
    ]
    assert [t.name for t in s.tiers] == ["优秀", "合格", "一般", "后进"]
    assert s.veto.period_score is VetoEffect.none  # 不体现积分
    assert s.veto.disqualify_year
    assert any(i.kind is IndicatorKind.veto for i in s.indicators)


def test_jiangzhong_numbers_from_seed_000() -> None:
    s = load_preset("jiangzhong")
    assert [d.name for d in s.dimensions] == ["政治过硬", "作风过硬", "业绩过硬", "本领过硬"]
    aspects = [sub.name for d in s.dimensions for sub in d.subdimensions]
    assert sorted(aspects) == sorted(
        ["政治意识", "作风建设", "担当践诺", "攻坚克难", "能力锻造", "服务群众"]
    )
    assert len(s.indicators) == 18
    kinds = Counter(i.kind for i in s.indicators)
    assert set(kinds) == {IndicatorKind.score, IndicatorKind.bonus, IndicatorKind.deduction}
    assert {k.label for k in kinds} == {"评分项", "加分项", "扣分项"}
    aspect_codes = {sub.code for d in s.dimensions for sub in d.subdimensions}
    assert all(i.dimension in aspect_codes for i in s.indicators)
    declared = [i for i in s.indicators if i.source is Source.declared]
    assert declared and all(i.awarders for i in declared)  # 指定专人审核
    assert s.ranking.mode is RankingMode.full


def test_datang_groups_vetoes_and_stars_from_seed_001() -> None:
    s = load_preset("datang")
    groups = [d.name for d in s.dimensions] + [s.period.bonus.name]
    assert groups == ["基础项", "业绩项", "履职项", "约束项", "加分项"]
    assert [d.description for d in s.dimensions] == [
        "带头学习提高",
        "带头争创佳绩",
        "带头服务群众",
        "带头弘扬正气",
    ]
    constraint = next(d for d in s.dimensions if d.name == "约束项")
    assert constraint.baseline is Baseline.full
    vetoes = {i.name for i in s.indicators if i.kind is IndicatorKind.veto}
    assert vetoes == {
        "违反党的政治纪律",
        "违反党的组织纪律",
        "违反党的廉洁纪律",
        "违反党的群众纪律",
        "违反党的工作纪律",
        "违反党的生活纪律",
        "违反国家法律法规",
    }
    assert s.veto.disqualify_year  # 直接取消评星定级资格
    names = {i.name for i in s.indicators}
    assert {"单位小时创效", "检修创效", "库存创效", "财税创效"} <= names
    assert [lv.stars for lv in s.stars] == [5, 4, 3, 2, 1]
    assert all(lv.min_score is not None for lv in s.stars)
    assert s.ranking.mode is RankingMode.full  # 公开张榜“晒绩”
