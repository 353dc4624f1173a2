"""Addresses of the H5 pages, as chat messages, the CLI and QR codes give them out."""

from __future__ import annotations

from app.config import Settings


def _base(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/")


def checkin_url(settings: Settings, token: str) -> str:
    """What a check-in QR code encodes: the H5 check-in page with the token."""
    return f"{_base(settings)}/h5/checkin?t={token}"


def activity_url(settings: Settings, activity_id: int) -> str:
    """An activity's H5 page."""
    return f"{_base(settings)}/h5/activities/{activity_id}"


def screen_url(settings: Settings, activity_id: int) -> str:
    """An activity's room screen with the rotating code."""
    return f"{activity_url(settings, activity_id)}/screen"


def my_points_url(settings: Settings, period: str) -> str:
    """The member's points page for a period."""
    return f"{_base(settings)}/h5/me?period={period}"
