"""Check-in rules: rotating QR tokens, the check-in window, lateness, geofence and outcomes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from datetime import datetime, timedelta
from enum import StrEnum

EXPIRED_MESSAGE = "二维码已过期，请重新扫码"
INVALID_MESSAGE = "二维码无效，请扫描会场屏幕上的签到码"


# ASCII digits only (str.isdigit also accepts "²"), and short enough to stay a sane integer.
_NUMBER = re.compile(r"[0-9]{1,15}")


class TokenError(ValueError):
    """A scanned token was refused; the message is for the member, in Chinese."""


class TokenExpired(TokenError):
    """The token was genuine but its window has passed."""


def window_index(now: datetime, rotate_s: int) -> int:
    """The number of the QR window `now` falls in (windows are `rotate_s` seconds long)."""
    return int(now.timestamp()) // rotate_s


def window_ends_at(window: int, rotate_s: int) -> float:
    """The epoch second at which window `window` ends."""
    return float((window + 1) * rotate_s)


def _signature(secret: str, activity_id: int, window: int) -> str:
    mac = hmac.new(secret.encode(), f"checkin:{activity_id}:{window}".encode(), hashlib.sha256)
    # 128 bits keep the URL short enough for a dense-free QR code and are far beyond guessing.
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def make_token(*, secret: str, activity_id: int, window: int) -> str:
    """The token the room screen shows for an activity during one window."""
    return f"{activity_id}.{window}.{_signature(secret, activity_id, window)}"


def read_token(*, secret: str, token: str, current_window: int) -> int:
    """The activity id of a genuine token from the current or the previous window."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(_NUMBER.fullmatch(p) for p in parts[:2]):
        raise TokenError(INVALID_MESSAGE)
    activity_id, window = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2], _signature(secret, activity_id, window)):
        raise TokenError(INVALID_MESSAGE)
    if window > current_window:
        # A window from the future means a clock far off or a forged window number.
        raise TokenError(INVALID_MESSAGE)
    if current_window - window > 1:
        raise TokenExpired(EXPIRED_MESSAGE)
    return activity_id


class WindowState(StrEnum):
    """Where `now` stands relative to an activity's check-in window."""

    NOT_OPEN = "not_open"
    OPEN = "open"
    CLOSED = "closed"


def window_state(*, now: datetime, opens_at: datetime, closes_at: datetime) -> WindowState:
    """Whether check-in is not yet open, open, or closed."""
    if now < opens_at:
        return WindowState.NOT_OPEN
    if now > closes_at:
        return WindowState.CLOSED
    return WindowState.OPEN


def default_window(
    *, starts_at: datetime, ends_at: datetime, opens_before_min: int, closes_after_min: int
) -> tuple[datetime, datetime]:
    """The default check-in window: some minutes before the start to some after the end."""
    return (starts_at - timedelta(minutes=opens_before_min),
            ends_at + timedelta(minutes=closes_after_min))


def is_late(*, checked_in_at: datetime, starts_at: datetime, late_after_min: int) -> bool:
    """A check-in more than `late_after_min` minutes after the start is late."""
    return checked_in_at > starts_at + timedelta(minutes=late_after_min)


EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine), ample for a geofence of a few hundred metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


class Outcome(StrEnum):
    """An expected attendee's final attendance."""

    PRESENT = "present"
    LATE = "late"
    EXCUSED = "excused"
    ABSENT = "absent"

    @property
    def label(self) -> str:
        """The Chinese name."""
        return {"present": "出席", "late": "迟到", "excused": "请假", "absent": "缺席"}[self.value]


def attendance_outcome(
    *, checked_in: bool, late: bool, approved_leave_kind: str | None,
    excused_kinds: tuple[str, ...],
) -> Outcome:
    """Being there wins over leave; approved leave of an excused kind excuses; else absent."""
    if checked_in:
        return Outcome.LATE if late else Outcome.PRESENT
    if approved_leave_kind is not None and approved_leave_kind in excused_kinds:
        return Outcome.EXCUSED
    return Outcome.ABSENT


def indicators_for(
    outcome: Outcome, *, present: str | None, late: str | None, absent: str | None
) -> list[str]:
    """The automatic indicator codes an outcome records under the scheme's attendance rules."""
    if outcome is Outcome.PRESENT:
        return [present] if present else []
    if outcome is Outcome.LATE:
        return [code for code in (present, late) if code]
    if outcome is Outcome.ABSENT:
        return [absent] if absent else []
    return []
