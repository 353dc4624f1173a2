"""Service refusals as HTTP answers: each kind of refusal has its status."""

from __future__ import annotations

from fastapi import HTTPException

from app.domain.refusals import Refusal, Refused

_STATUS = {
    Refusal.invalid: 400,
    Refusal.not_found: 404,
    Refusal.forbidden: 403,
    Refusal.conflict: 409,
    Refusal.unsupported: 415,
}


def status_of(exc: Refused) -> int:
    """The HTTP status for a refusal of this kind."""
    return _STATUS[exc.kind]


def http_error(exc: Refused) -> HTTPException:
    """The 4xx answer for a refusal, carrying its Chinese reason."""
    return HTTPException(status_of(exc), str(exc))
