"""Sliding-window rate limits per lane (one robot webhook, one app's API), on a given clock.

Pure bookkeeping: the caller passes the time (seconds, any epoch) to every call, so tests and
benchmarks drive it with a fake clock shared with a fake platform. Not thread-safe on its own.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """At most `limit` events in any window of `window_s` seconds."""

    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s <= 0:
            raise ValueError("a rate needs limit >= 1 and window_s > 0")


def per_minute(count: int, *, margin_s: float = 0.0) -> Rate:
    """`count` per sliding minute, as custom group robots are limited (bursts allowed)."""
    return Rate(count, 60.0 + margin_s)


def smoothed(count_per_min: int) -> Rate:
    """`count_per_min` spread evenly: app APIs are limited per second, not per minute."""
    limit = max(1, count_per_min // 60)
    return Rate(limit, 60.0 * limit / count_per_min)


class SlidingWindowLimiter:
    """Per-lane sliding windows: an event at t holds one of the lane's slots until t + window."""

    def __init__(self, rate_of: Callable[[str], Rate]) -> None:
        self._rate_of = rate_of
        self._events: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}

    def _live(self, lane: str, now: float) -> list[float]:
        """The lane's events still inside the window at `now`, oldest first (pruned in place)."""
        events = self._events.get(lane)
        if events is None:
            return []
        horizon = now - self._rate_of(lane).window_s
        drop = 0
        while drop < len(events) and events[drop] <= horizon:
            drop += 1
        if drop:
            del events[:drop]
        if not events:
            # Thousands of robots post once a month: keep no state for idle lanes.
            del self._events[lane]
        return events

    def free_at(self, lane: str, now: float) -> float:
        """The earliest time, not before `now`, at which one more event fits in the lane."""
        return self.schedule(lane, now, 1)[0]

    def schedule(self, lane: str, now: float, count: int) -> list[float]:
        """The earliest times for the lane's next `count` events, each taken at its time."""
        rate = self._rate_of(lane)
        planned = list(self._live(lane, now))
        until = self.blocked_until(lane, now)
        start = now if until is None else until
        times: list[float] = []
        for _ in range(count):
            at = start
            if len(planned) >= rate.limit:
                at = max(at, planned[len(planned) - rate.limit] + rate.window_s)
            planned.append(at)
            times.append(at)
        return times

    def try_acquire(self, lane: str, now: float) -> bool:
        """Take a slot at `now` if one is free; False (nothing recorded) when the lane is full."""
        if self.free_at(lane, now) > now:
            return False
        self.record(lane, now)
        return True

    def record(self, lane: str, at: float) -> None:
        """Count an event at `at`, whether or not a slot was free (the platform saw it)."""
        insort(self._events.setdefault(lane, []), at)

    def settle(self, lane: str, started: float, finished: float) -> None:
        """Move an event from when its request started to when its answer came.

        The platform counts the request when it arrives, somewhere in between; counting it at
        the answer keeps our window from freeing a slot before the platform's does.
        """
        events = self._events.get(lane)
        if events is not None and started in events:
            events.remove(started)
        self.record(lane, max(started, finished))

    def block(self, lane: str, until: float) -> None:
        """Allow no event in the lane before `until` (the platform locked us out)."""
        self._blocked[lane] = max(until, self._blocked.get(lane, until))

    def blocked_until(self, lane: str, now: float) -> float | None:
        """When a block on the lane ends, if one is still in force at `now`."""
        until = self._blocked.get(lane)
        if until is None or until <= now:
            self._blocked.pop(lane, None)
            return None
        return until

    def lanes(self) -> int:
        """How many lanes hold state (for tests: idle lanes are forgotten)."""
        return len(self._events)
