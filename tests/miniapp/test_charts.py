"""The monthly trend chart: structure, gaps, negatives and the empty case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from miniapp_api.charts import format_points, trend_svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in by_class(root, cls)]


def year_of(months: int) -> list[tuple[str, Decimal | None]]:
    return [(f"2026-{m:02d}", Decimal(m)) for m in range(1, months + 1)]


def test_accessible_svg_with_fixed_viewbox():
    root = parse(trend_svg(year_of(3), title="我的积分趋势"))
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox") == "0 0 360 200"
    title = root.find(f"{NS}title")
    desc = root.find(f"{NS}desc")
    assert title is not None and title.text == "我的积分趋势"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert desc.text == "2026年1月：+1；2026年2月：+2；2026年3月：+3"


def test_one_bar_and_one_label_per_month():
    root = parse(trend_svg(year_of(12), title="全年"))
    assert len(by_class(root, "pp-chart-bar")) == 12
    assert texts(root, "pp-chart-label") == [f"{m}月" for m in range(1, 13)]
    assert texts(root, "pp-chart-value") == [f"+{m}" for m in range(1, 13)]
    assert by_class(root, "pp-chart-year") == []  # one year: no year line


def test_taller_bar_for_larger_value():
    root = parse(trend_svg(year_of(2), title="t"))
    small, big = (float(b.get("height")) for b in by_class(root, "pp-chart-bar"))
    assert big == pytest.approx(2 * small)


def test_none_is_a_gap_not_a_zero():
    points = [("2026-01", Decimal(3)), ("2026-02", None), ("2026-03", Decimal(0))]
    root = parse(trend_svg(points, title="t"))
    bars = by_class(root, "pp-chart-bar")
    assert [b.get("data-period") for b in bars] == ["2026-01", "2026-03"]
    assert texts(root, "pp-chart-value") == ["+3", "0"]
    assert len(by_class(root, "pp-chart-gap")) == 1
    assert texts(root, "pp-chart-label") == ["1月", "2月", "3月"]
    assert "2026年2月：暂无数据" in root.find(f"{NS}desc").text


def test_negative_bars_hang_below_the_zero_line():
    points = [("2026-01", Decimal("5")), ("2026-02", Decimal("-2.50")), ("2026-03", Decimal(1))]
    root = parse(trend_svg(points, title="t"))
    (zero,) = by_class(root, "pp-chart-zero")
    zero_y = float(zero.get("y1"))
    bars = {b.get("data-period"): b for b in by_class(root, "pp-chart-bar")}
    negative = bars["2026-02"]
    assert "pp-chart-neg" in negative.get("class").split()
    assert float(negative.get("y")) == pytest.approx(zero_y)
    assert float(negative.get("y")) + float(negative.get("height")) > zero_y
    for period in ("2026-01", "2026-03"):
        bar = bars[period]
        assert float(bar.get("y")) + float(bar.get("height")) == pytest.approx(zero_y)
        assert float(bar.get("y")) < zero_y
    assert "\u22122.5" in texts(root, "pp-chart-value")
    # The negative label sits under its bar, the positive ones above theirs.
    values = {e.text: float(e.get("y")) for e in by_class(root, "pp-chart-value")}
    assert values["\u22122.5"] > zero_y
    assert values["+5"] < zero_y


def test_all_negative_keeps_the_zero_line_at_the_top():
    points = [("2026-01", Decimal(-1)), ("2026-02", Decimal(-4))]
    root = parse(trend_svg(points, title="t"))
    (zero,) = by_class(root, "pp-chart-zero")
    for bar in by_class(root, "pp-chart-bar"):
        assert float(bar.get("y")) == pytest.approx(float(zero.get("y1")))


@pytest.mark.parametrize("points", [[], [("2026-01", None), ("2026-02", None)]])
def test_no_data(points):
    root = parse(trend_svg(points, title="无数据"))
    assert texts(root, "pp-chart-empty") == ["暂无数据"]
    assert by_class(root, "pp-chart-bar") == []
    assert by_class(root, "pp-chart-zero") == []
    assert len(by_class(root, "pp-chart-label")) == len(points)
    assert root.get("role") == "img"


def test_all_zero_draws_flat_bars():
    root = parse(trend_svg([("2026-01", Decimal(0)), ("2026-02", Decimal(0))], title="t"))
    assert [float(b.get("height")) for b in by_class(root, "pp-chart-bar")] == [0, 0]
    assert texts(root, "pp-chart-value") == ["0", "0"]


def test_year_shown_where_the_series_crosses_a_year():
    points = [("2025-11", Decimal(1)), ("2025-12", Decimal(2)), ("2026-01", Decimal(3))]
    root = parse(trend_svg(points, title="t"))
    assert texts(root, "pp-chart-label") == ["11月", "12月", "1月"]
    assert texts(root, "pp-chart-year") == ["2025", "2026"]


def test_text_is_escaped():
    svg = trend_svg(year_of(1), title='<script>alert("x")</script> & 积分')
    assert "<script>" not in svg
    assert parse(svg).find(f"{NS}title").text == '<script>alert("x")</script> & 积分'


def test_ids_differ_between_charts_and_are_stable():
    a, b = trend_svg(year_of(2), title="甲"), trend_svg(year_of(2), title="乙")
    assert parse(a).find(f"{NS}title").get("id") != parse(b).find(f"{NS}title").get("id")
    assert a == trend_svg(year_of(2), title="甲")


def test_more_than_twelve_months_is_refused():
    points = [*year_of(12), ("2027-01", Decimal(1))]
    with pytest.raises(ValueError):
        trend_svg(points, title="t")


@pytest.mark.parametrize("period", ["2026-13", "2026/01", "1月", "2026"])
def test_bad_period_key_is_refused(period):
    with pytest.raises(ValueError):
        trend_svg([(period, Decimal(1))], title="t")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal(3), "+3"),
        (3, "+3"),
        (Decimal("-5"), "\u22125"),
        (-5, "\u22125"),
        (0, "0"),
        (Decimal("0.00"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("2.50"), "+2.5"),
        (Decimal("-0.25"), "\u22120.25"),
        (Decimal("100"), "+100"),
        (Decimal("1E+2"), "+100"),
        (Decimal("10.0"), "+10"),
    ],
)
def test_format_points(value, expected):
    assert format_points(value) == expected


def test_format_points_refuses_nan():
    with pytest.raises(ValueError):
        format_points(Decimal("NaN"))
