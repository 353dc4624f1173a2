"""Sliding-window lane limits on a given clock."""

from __future__ import annotations

import pytest

from app.domain.ratelimit import Rate, SlidingWindowLimiter, per_minute, smoothed


def limiter(rate: Rate = Rate(3, 60.0)) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(lambda lane: rate)


def test_a_lane_takes_its_limit_then_waits_for_the_oldest_event_to_leave_the_window():
    lanes = limiter()
    assert [lanes.try_acquire("a", t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert lanes.try_acquire("a", 59.9) is False
    assert lanes.free_at("a", 30.0) == 60.0
    # An event at t holds its slot until t + window exactly, as the fake DingTalk counts it.
    assert lanes.try_acquire("a", 60.0) is True
    assert lanes.free_at("a", 60.0) == 61.0


def test_lanes_are_independent():
    lanes = limiter(Rate(1, 60.0))
    assert lanes.try_acquire("robot:a", 0.0) is True
    assert lanes.try_acquire("robot:b", 0.0) is True
    assert lanes.try_acquire("robot:a", 1.0) is False


def test_schedule_spreads_a_backlog_over_the_windows_it_needs():
    lanes = limiter()
    lanes.record("a", 10.0)
    assert lanes.schedule("a", 20.0, 6) == [20.0, 20.0, 70.0, 80.0, 80.0, 130.0]
    # Scheduling records nothing.
    assert lanes.free_at("a", 20.0) == 20.0


def test_settle_counts_an_event_when_its_answer_came():
    lanes = limiter(Rate(1, 60.0))
    assert lanes.try_acquire("a", 0.0)
    lanes.settle("a", 0.0, 2.5)
    assert lanes.free_at("a", 60.0) == 62.5


def test_a_block_holds_the_lane_shut_until_it_ends():
    lanes = limiter()
    lanes.block("a", 600.0)
    lanes.block("a", 300.0)  # a shorter block never shortens a longer one
    assert lanes.free_at("a", 0.0) == 600.0
    assert lanes.blocked_until("a", 0.0) == 600.0
    assert lanes.try_acquire("a", 599.0) is False
    assert lanes.try_acquire("a", 600.0) is True
    assert lanes.blocked_until("a", 600.0) is None


def test_idle_lanes_are_forgotten():
    lanes = limiter()
    for n in range(1000):
        lanes.try_acquire(f"robot:{n}", 0.0)
    assert lanes.lanes() == 1000
    for n in range(1000):
        lanes.free_at(f"robot:{n}", 61.0)
    assert lanes.lanes() == 0


def test_rates():
    assert per_minute(20) == Rate(20, 60.0)
    assert per_minute(20, margin_s=1.0) == Rate(20, 61.0)
    # App APIs are limited per second: 600 a minute is 10 a second, never 600 at once.
    assert smoothed(600) == Rate(10, 1.0)
    assert smoothed(30) == Rate(1, 2.0)
    assert smoothed(90).limit == 1 and smoothed(90).window_s == pytest.approx(60 / 90)
    with pytest.raises(ValueError):
        Rate(0, 60.0)
