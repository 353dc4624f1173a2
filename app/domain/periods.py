"""Period keys (month, quarter, year) computed in the business time zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_key(instant: datetime, tz: ZoneInfo) -> str:
    """`2026-11` for the month that `instant` falls in, as seen in `tz`."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is required")
    local = instant.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def month_key_of(day: date) -> str:
    """`2026-11` for a calendar date."""
    return f"{day.year:04d}-{day.month:02d}"


# Years a month key may name: the months a party-points system can mean. Anything else is a
# typo, and year 0 or 9999 would break the date arithmetic of a month's neighbours.
FIRST_YEAR, LAST_YEAR = 2000, 2099


def parse_month(key: str) -> tuple[int, int]:
    """(year, month) of `2026-11`; ValueError for anything else."""
    match = _MONTH.match(key.strip())
    if (not match or not 1 <= int(match.group(2)) <= 12
            or not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR):
        raise ValueError(f"“{key}”不是有效的月份（例如 2026-11）")
    return int(match.group(1)), int(match.group(2))


def quarter_key(month: str) -> str:
    """`2026-Q4` for `2026-11`."""
    year, mon = parse_month(month)
    return f"{year}-Q{(mon - 1) // 3 + 1}"


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which `month` starts and the next month starts, in `tz`."""
    year, mon = parse_month(month)
    start = datetime(year, mon, 1, tzinfo=tz)
    nxt = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), nxt.astimezone(UTC)


def previous_month(month: str) -> str:
    """`2026-10` for `2026-11`, `2025-12` for `2026-01`."""
    year, mon = parse_month(month)
    last = date(year, mon, 1) - timedelta(days=1)
    return month_key_of(last)


def next_month(month: str) -> str:
    """`2026-12` for `2026-11`, `2027-01` for `2026-12`."""
    year, mon = parse_month(month)
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def month_label(key: str) -> str:
    """A month key as people write it: 2026年11月."""
    year, month = parse_month(key)
    return f"{year}年{month}月"
