"""Local dates and times as people type them: 2026-11-28 14:30, 11月28日14:30, 明天 9:00."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

EXAMPLES = "2026-11-28 14:30、11月28日 14:30 或 明天 14:30"
EMPTY_MESSAGE = f"请写上活动时间，例如 {EXAMPLES}"

_RELATIVE_DAYS = {"前天": -2, "昨天": -1, "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}
_DATE = (
    r"(?:(?P<rel>前天|昨天|今天|今日|明天|明日|后天)"
    r"|(?:(?P<y>\d{4})[-/.])?(?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"|(?:(?P<cy>\d{4})年)?(?P<cm>\d{1,2})月(?P<cd>\d{1,2})[日号]?)"
)
_TIME = (
    r"(?P<ap>上午|早上|中午|下午|晚上)?(?P<h>\d{1,2})"
    r"(?::(?P<mi>\d{2})(?::(?P<s>\d{2}))?|点(?:(?P<half>半)|(?P<pmi>\d{1,2})分?)?)"
)
# A date, a time, or both; an ISO "T" or spaces may separate them.
_WHEN = re.compile(rf"(?:{_DATE})?\s*[Tt]?\s*(?:{_TIME})?")
_AFTERNOON = ("下午", "晚上")


class _Unreadable(ValueError):
    """The text is not a date and time in any form we know."""


class _MissingTime(ValueError):
    """A date without a time of day."""


def parse_local_datetime(
    text: str, *, now_local: datetime, bare_time_day: date | None = None
) -> datetime:
    """The local date and time in `text`, in now_local's time zone; ValueError (Chinese) if not.

    A date without a year is the nearest such day; a time alone is on `bare_time_day` (today
    unless given, e.g. the start's day for an end time).
    """
    folded = " ".join(unicodedata.normalize("NFKC", text).split())
    if not folded:
        raise _Unreadable(EMPTY_MESSAGE)
    match = _WHEN.fullmatch(folded)
    if match is None:
        raise _Unreadable(f"看不懂时间“{text.strip()}”，可以写成 {EXAMPLES}")
    parts = match.groupdict()
    has_date = any(parts[k] for k in ("rel", "m", "cm"))
    if parts["h"] is None:
        if not has_date:
            raise _Unreadable(f"看不懂时间“{text.strip()}”，可以写成 {EXAMPLES}")
        raise _MissingTime(f"请在日期后写上开始时间，例如 {folded} 14:30")
    day = _day(parts, now_local.date()) if has_date else bare_time_day or now_local.date()
    return datetime.combine(day, _time_of_day(parts), tzinfo=now_local.tzinfo)


def take_local_datetime(
    words: Sequence[str], *, now_local: datetime
) -> tuple[datetime, list[str]]:
    """Read a date and time from the first one or two words; return it and the words after."""
    if not words:
        raise _Unreadable(EMPTY_MESSAGE)
    two: ValueError | None = None
    if len(words) >= 2:
        try:
            return parse_local_datetime(" ".join(words[:2]), now_local=now_local), list(words[2:])
        except ValueError as exc:
            two = exc
    try:
        return parse_local_datetime(words[0], now_local=now_local), list(words[1:])
    except (_Unreadable, _MissingTime) as one:
        # "11月28日 25:00": the second word was meant as the time, so its complaint is the one
        # to show; "11月28日 三楼" has no time at all, which the first word's complaint says.
        if two is not None and not isinstance(two, _Unreadable):
            raise two from None
        raise one from None


def _day(parts: dict[str, str | None], today: date) -> date:
    if parts["rel"]:
        return today + timedelta(days=_RELATIVE_DAYS[parts["rel"]])
    year, month, day = (parts["y"], parts["m"], parts["d"]) if parts["m"] else (
        parts["cy"], parts["cm"], parts["cd"])
    assert month is not None and day is not None
    written = f"{month}月{day}日" if year is None else f"{year}年{month}月{day}日"
    years = [int(year)] if year else [today.year - 1, today.year, today.year + 1]
    candidates = []
    for y in years:
        try:
            candidates.append(date(y, int(month), int(day)))
        except ValueError:
            continue
    if not candidates:
        raise ValueError(f"日期“{written}”不存在，请检查月份和日期")
    # Without a year, the nearest such day: "1月5日" written in December is the coming January,
    # while "11月28日" written on November 29th is yesterday (refused as past, not next year).
    return min(candidates, key=lambda c: (abs((c - today).days), c < today))


def _time_of_day(parts: dict[str, str | None]) -> time:
    assert parts["h"] is not None
    hour = int(parts["h"])
    minute = 30 if parts["half"] else int(parts["mi"] or parts["pmi"] or 0)
    second = int(parts["s"] or 0)
    written = f"{parts['ap'] or ''}{hour}:{minute:02d}"
    if (parts["ap"] in _AFTERNOON and 1 <= hour < 12) or (parts["ap"] == "中午" and 1 <= hour < 11):
        hour += 12
    elif parts["ap"] in ("上午", "早上") and hour > 12:
        raise ValueError(f"时间“{written}”前后矛盾：上午没有 {hour} 点")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"时间“{written}”无效：小时应为 0–23，分钟应为 0–59")
    return time(hour, minute, second)
