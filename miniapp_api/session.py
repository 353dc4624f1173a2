"""Short-lived login sessions for the H5 pages and the mini-app API, signed with SECRET_KEY."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

COOKIE_NAME = "pp_session"
# A salt of its own, so that no other token signed with SECRET_KEY (e.g. a check-in QR code)
# can ever be replayed as a session.
SALT = "partypoints.session"

EXPIRED_MESSAGE = "登录已过期，请从钉钉或企业微信重新打开页面"
INVALID_MESSAGE = "登录信息无效，请重新打开页面"


class SessionError(ValueError):
    """A session token that is expired, forged or malformed; the message is for the user."""


@dataclass(frozen=True)
class SessionClaims:
    """Who a session belongs to, from which platform, and when it was issued (UTC)."""

    person_id: int
    platform: str
    issued_at: datetime


def _serializer(secret: str) -> URLSafeTimedSerializer:
    if not secret:
        # An empty key would sign tokens that anyone can forge.
        raise ValueError("a session needs a non-empty secret")
    return URLSafeTimedSerializer(secret, salt=SALT)


def issue_session(*, secret: str, person_id: int, platform: str) -> str:
    """A signed, URL-safe session token for `person_id` logged in through `platform`."""
    if isinstance(person_id, bool) or not isinstance(person_id, int) or person_id <= 0:
        raise ValueError(f"person_id must be a positive int, not {person_id!r}")
    if not platform:
        raise ValueError("platform must not be empty")
    return _serializer(secret).dumps({"p": person_id, "pl": platform})


def read_session(*, secret: str, token: str, max_age_s: int) -> SessionClaims:
    """The claims of a valid token no older than `max_age_s`; SessionError otherwise."""
    try:
        payload, signed_at = _serializer(secret).loads(
            token, max_age=max_age_s, return_timestamp=True
        )
    except SignatureExpired:
        raise SessionError(EXPIRED_MESSAGE) from None
    except BadData:
        raise SessionError(INVALID_MESSAGE) from None
    person_id = payload.get("p") if isinstance(payload, dict) else None
    platform = payload.get("pl") if isinstance(payload, dict) else None
    # A correct signature over an unexpected shape means a format change or a bug, never a user.
    if (
        isinstance(person_id, bool)
        or not isinstance(person_id, int)
        or person_id <= 0
        or not isinstance(platform, str)
        or not platform
    ):
        raise SessionError(INVALID_MESSAGE)
    return SessionClaims(
        person_id=person_id, platform=platform, issued_at=signed_at.astimezone(UTC)
    )


def token_from(*, cookie: str | None, authorization: str | None) -> str | None:
    """The session token of a request: an `Authorization: Bearer …` header, else the cookie."""
    # An explicit header is the caller's deliberate choice (the mini-app API), so it wins over a
    # cookie the webview may still hold from an earlier login.
    if authorization:
        parts = authorization.split()
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return parts[1]
    if cookie and cookie.strip():
        return cookie.strip()
    return None
