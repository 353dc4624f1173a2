"""Period keys are computed in the business time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domain.periods import (
    month_bounds,
    month_key,
    next_month,
    parse_month,
    previous_month,
    quarter_key,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_late_utc_evening_on_the_last_day_is_already_next_month_in_shanghai():
    instant = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 Nov in Shanghai
    assert month_key(instant, SHANGHAI) == "2026-11"
    assert month_key(instant, ZoneInfo("UTC")) == "2026-10"


def test_month_bounds_are_shanghai_midnights_in_utc():
    start, end = month_bounds("2026-12", SHANGHAI)
    assert start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


def test_neighbouring_months_and_quarters():
    assert previous_month("2026-01") == "2025-12"
    assert next_month("2026-12") == "2027-01"
    assert quarter_key("2026-11") == "2026-Q4"
    assert quarter_key("2026-03") == "2026-Q1"


@pytest.mark.parametrize("bad", ["2026-13", "2026/11", "11-2026", "", "2026-1",
                                 "0000-01", "1999-12", "2100-01", "9999-12"])
def test_bad_month_keys_are_refused_in_chinese(bad):
    with pytest.raises(ValueError, match="不是有效的月份"):
        parse_month(bad)


def test_every_accepted_month_has_neighbours_that_are_dates():
    assert parse_month("2000-01") == (2000, 1) and parse_month("2099-12") == (2099, 12)
    assert previous_month("2000-01") == "1999-12" and next_month("2099-12") == "2100-01"


def test_naive_instant_is_refused():
    with pytest.raises(ValueError):
        month_key(datetime(2026, 1, 1), SHANGHAI)
