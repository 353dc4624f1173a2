"""The Jinja2 templates of the H5 pages and the filters that format numbers, times and periods."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

from app.config import get_settings
from miniapp_api.charts import format_points

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
NO_VALUE = "—"

_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4]))?$")
_QUARTERS = {"1": "一", "2": "二", "3": "三", "4": "四"}

# Status words to the badge colours of h5.css; 出席 is the check-in module's word for 准时.
BADGE_CLASSES = {
    "准时": "ontime",
    "出席": "ontime",
    "迟到": "late",
    "请假": "leave",
    "缺席": "absent",
    "待审批": "pending",
    "已批准": "approved",
    "已驳回": "rejected",
}

_tz: ZoneInfo | None = None


def configure(tz: ZoneInfo | None) -> None:
    """Set the business time zone that `localtime` shows; None goes back to the settings' zone."""
    global _tz
    _tz = tz


def business_tz() -> ZoneInfo:
    """The zone `localtime` converts into: the configured one, else BUSINESS_TZ from settings."""
    return _tz if _tz is not None else get_settings().tz


def points(value: Decimal | int | None) -> str:
    """Jinja filter: `+3`, `−5`, `0`, `+2.5`; a dash when there is no value."""
    return NO_VALUE if value is None else format_points(value)


def localtime(value: datetime | None) -> str:
    """Jinja filter: an instant as `11月22日 14:30` in the business time zone."""
    if value is None:
        return NO_VALUE
    # Every stored time is UTC (app.db.UTCDateTime); a naive one can only be UTC that lost its zone.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    local = aware.astimezone(business_tz())
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def period_label(key: str | None) -> str:
    """Jinja filter: `2026-11` → `2026年11月`, `2026-Q4` → `2026年第四季度`, `2026` → `2026年`."""
    if not key:
        return NO_VALUE
    match = _PERIOD.match(key.strip())
    if not match:
        # Show an unknown key as it is rather than break the whole page over a label.
        return key
    year, month, quarter = match.groups()
    if month is not None:
        return f"{year}年{int(month)}月" if 1 <= int(month) <= 12 else key
    if quarter is not None:
        return f"{year}年第{_QUARTERS[quarter]}季度"
    return f"{year}年"


def badge(status: object) -> Markup:
    """Jinja filter: a status word (or anything with a Chinese `label`) as a coloured badge."""
    text = str(getattr(status, "label", None) or status)
    variant = BADGE_CLASSES.get(text)
    cls = f"pp-badge pp-badge-{variant}" if variant else "pp-badge"
    return Markup('<span class="{}">{}</span>').format(cls, escape(text))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # Every template is HTML or SVG shown to members: escape everything, whatever its name.
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["points"] = points
    env.filters["localtime"] = localtime
    env.filters["period_label"] = period_label
    env.filters["badge"] = badge
    return env


templates = Jinja2Templates(env=_environment())
