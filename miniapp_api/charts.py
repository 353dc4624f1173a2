"""Inline SVG charts for the H5 pages: pure functions from numbers to markup, no JavaScript."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from app.domain.periods import parse_month

MINUS = "\u2212"  # a real minus sign: a hyphen is too short to read as negative on a phone
MAX_MONTHS = 12

# A fixed coordinate system; the SVG scales to the container width through its viewBox.
WIDTH, HEIGHT = 360, 200
PAD_X = 6
PLOT_TOP = 22  # room for the value labels above the tallest bar
LABELS_Y = 180
YEARS_Y = 195
NEG_LABEL_ROOM = 16  # room for the value labels below the deepest negative bar
AXIS_BOTTOM = 166
MAX_BAR_WIDTH = 28

POSITIVE_FILL = "#c8161d"
NEGATIVE_FILL = "#6b7685"
MUTED = "#a0a7b1"
TEXT = "#333333"
LABEL = "#666666"


def format_points(value: Decimal | int) -> str:
    """`+3`, `−5` (U+2212), `0`, `+2.5` for 2.50: a points value as people read it."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"not a points value: {value!r}")
    if number == 0:
        return "0"
    text = format(abs(number), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("+" if number > 0 else MINUS) + text


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, *, cls: str, fill: str, size: int = 10) -> str:
    return (
        f'<text class="{cls}" x="{_num(x)}" y="{_num(y)}" text-anchor="middle" '
        f'font-size="{size}" fill="{fill}">{escape(content)}</text>'
    )


def trend_svg(points: Sequence[tuple[str, Decimal | None]], *, title: str) -> str:
    """A bar chart of up to 12 months (`("2026-01", Decimal)`, None for no data) as inline SVG."""
    if len(points) > MAX_MONTHS:
        raise ValueError(f"a trend shows at most {MAX_MONTHS} months, got {len(points)}")
    months = [parse_month(period) for period, _ in points]
    values = [value for _, value in points]
    known = [float(v) for v in values if v is not None]

    # Ids must be unique on a page that shows several charts, and stable for a pure function.
    digest = hashlib.sha1(repr((title, list(points))).encode()).hexdigest()[:10]
    title_id, desc_id = f"ppc-{digest}-t", f"ppc-{digest}-d"
    summary = "；".join(
        f"{year}年{month}月：{'暂无数据' if value is None else format_points(value)}"
        for (year, month), value in zip(months, values, strict=True)
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pp-chart" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" preserveAspectRatio="xMidYMid meet" role="img"'
        f' aria-labelledby="{title_id} {desc_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(summary or "暂无数据")}</desc>',
    ]

    slot = (WIDTH - 2 * PAD_X) / max(len(points), 1)
    centres = [PAD_X + slot * (i + 0.5) for i in range(len(points))]
    spans_years = len({year for year, _ in months}) > 1
    labels = []
    for i, ((year, month), x) in enumerate(zip(months, centres, strict=True)):
        labels.append(_text(x, LABELS_Y, f"{month}月", cls="pp-chart-label", fill=LABEL, size=11))
        # Across a new year the bare "1月" is ambiguous, so the year goes underneath; bare
        # digits, since "2025年" and "2026年" would run into each other under 12月 and 1月.
        if spans_years and (i == 0 or months[i - 1][0] != year):
            labels.append(_text(x, YEARS_Y, str(year), cls="pp-chart-year", fill=MUTED, size=9))

    if not known:
        parts.append(
            _text(
                WIDTH / 2,
                (PLOT_TOP + AXIS_BOTTOM) / 2,
                "暂无数据",
                cls="pp-chart-empty",
                fill=MUTED,
                size=14,
            )
        )
        parts.append(f'<g class="pp-chart-labels">{"".join(labels)}</g>')
        parts.append("</svg>")
        return "".join(parts)

    high, low = max(0.0, *known), min(0.0, *known)
    if high == low:  # all zero: any scale will do, the bars have no height
        high = 1.0
    bottom = AXIS_BOTTOM - (NEG_LABEL_ROOM if low < 0 else 0)
    scale = (bottom - PLOT_TOP) / (high - low)

    def y_of(v: float) -> float:
        # Rounded once here, so that every bar meets the zero line exactly.
        return round(PLOT_TOP + (high - v) * scale, 1)

    zero_y = y_of(0.0)
    bar_width = min(slot * 0.6, MAX_BAR_WIDTH)
    bars, marks = [], []
    for (period, value), x in zip(points, centres, strict=True):
        if value is None:
            # A gap, not a zero: no bar, and a muted dash where the bar would start.
            marks.append(_text(x, zero_y - 4, "—", cls="pp-chart-gap", fill=MUTED))
            continue
        v = float(value)
        top, end = (y_of(v), zero_y) if v >= 0 else (zero_y, y_of(v))
        negative = v < 0
        bars.append(
            f'<rect class="pp-chart-bar{" pp-chart-neg" if negative else ""}"'
            f' data-period="{escape(period)}" data-value="{escape(str(value))}"'
            f' x="{_num(x - bar_width / 2)}" y="{_num(top)}" width="{_num(bar_width)}"'
            f' height="{_num(max(round(end - top, 1), 0.0))}"'
            f' fill="{NEGATIVE_FILL if negative else POSITIVE_FILL}" rx="2"/>'
        )
        label_y = end + 12 if negative else top - 4
        marks.append(_text(x, label_y, format_points(value), cls="pp-chart-value", fill=TEXT))

    parts.append(f'<g class="pp-chart-bars">{"".join(bars)}</g>')
    parts.append(
        f'<line class="pp-chart-zero" x1="{PAD_X}" x2="{WIDTH - PAD_X}" y1="{_num(zero_y)}"'
        f' y2="{_num(zero_y)}" stroke="#999999" stroke-width="1"/>'
    )
    parts.append(f'<g class="pp-chart-values">{"".join(marks)}</g>')
    parts.append(f'<g class="pp-chart-labels">{"".join(labels)}</g>')
    parts.append("</svg>")
    return "".join(parts)
