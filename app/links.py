"""Addresses of the H5 pages, as chat messages, the CLI and QR codes give them out."""

from __future__ import annotations

import hashlib
import hmac

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


def board_page_url(settings: Settings, branch_id: int, period: str) -> str:
    """A branch's H5 board for a month (each member sees it as their ranking mode allows)."""
    return f"{_base(settings)}/h5/boards/branch/{branch_id}?period={period}"


def evaluation_url(settings: Settings, period: str) -> str:
    """The member's own evaluation month: self-evaluation, score, objection."""
    return f"{_base(settings)}/h5/evaluation?period={period}"


def branch_evaluation_url(settings: Settings, branch_id: int, period: str) -> str:
    """A branch's evaluation month for its secretary and the committee: scoring, publication."""
    return f"{_base(settings)}/h5/evaluation/branches/{branch_id}?period={period}"


def declaration_url(settings: Settings, declaration_id: int) -> str:
    """A declaration's page: attach evidence, submit, see the review."""
    return f"{_base(settings)}/h5/declarations/{declaration_id}"


def reviews_url(settings: Settings) -> str:
    """The declarations waiting for the viewer's review."""
    return f"{_base(settings)}/h5/declarations/reviews"


def board_signature(settings: Settings, branch_id: int, period: str) -> str:
    """The signature that opens a board picture: it is the only access control on that URL."""
    # The "board:" prefix keeps these MACs apart from anything else SECRET_KEY signs.
    key = settings.secret_key.get_secret_value().encode()
    message = f"board:{branch_id}:{period}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def board_image_url(settings: Settings, branch_id: int, period: str) -> str:
    """A board picture's public, signed URL, fetched by the chat platform's servers."""
    sig = board_signature(settings, branch_id, period)
    return f"{_base(settings)}/media/boards/{branch_id}/{period}.png?sig={sig}"


def verify_board_signature(settings: Settings, branch_id: int, period: str, sig: str) -> bool:
    """Whether `sig` opens this board picture (compared in constant time)."""
    expected = board_signature(settings, branch_id, period).encode()
    return hmac.compare_digest(expected, sig.encode("utf-8", "replace"))
