"""Signed H5 sessions: round trip, forgery, expiry and how a request carries the token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from itsdangerous import TimestampSigner

from miniapp_api.session import (
    COOKIE_NAME,
    SessionClaims,
    SessionError,
    issue_session,
    read_session,
    token_from,
)

SECRET = "test-secret"
EXPIRED = "登录已过期，请从钉钉或企业微信重新打开页面"
INVALID = "登录信息无效，请重新打开页面"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    """Freeze itsdangerous's clock; set `clock.now` to move it."""

    class Clock:
        now = 1_790_000_000

    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: Clock.now)
    return Clock


def test_round_trip_returns_the_claims(clock):
    token = issue_session(secret=SECRET, person_id=42, platform="dingtalk")
    claims = read_session(secret=SECRET, token=token, max_age_s=3600)
    assert claims == SessionClaims(
        person_id=42,
        platform="dingtalk",
        issued_at=datetime.fromtimestamp(1_790_000_000, tz=UTC),
    )
    assert claims.issued_at.tzinfo is not None
    with pytest.raises(AttributeError):
        claims.person_id = 7  # type: ignore[misc]


def test_token_is_url_and_cookie_safe():
    token = issue_session(secret=SECRET, person_id=1, platform="wecom")
    assert all(c.isalnum() or c in "-_." for c in token)
    assert COOKIE_NAME == "pp_session"


def test_tampered_token_is_invalid():
    token = issue_session(secret=SECRET, person_id=42, platform="dingtalk")
    _payload, rest = token.split(".", 1)
    forged = issue_session(secret="other", person_id=1, platform="dingtalk").split(".", 1)[0]
    for bad in (forged + "." + rest, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")):
        with pytest.raises(SessionError) as info:
            read_session(secret=SECRET, token=bad, max_age_s=3600)
        assert str(info.value) == INVALID


def test_wrong_secret_is_invalid():
    token = issue_session(secret=SECRET, person_id=42, platform="dingtalk")
    with pytest.raises(SessionError, match=INVALID):
        read_session(secret="another-secret", token=token, max_age_s=3600)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "登录", "....", "x" * 500])
def test_garbage_is_invalid(garbage):
    with pytest.raises(SessionError, match=INVALID):
        read_session(secret=SECRET, token=garbage, max_age_s=3600)


def test_session_error_is_a_value_error():
    assert issubclass(SessionError, ValueError)


def test_token_of_another_salt_is_invalid():
    from itsdangerous import URLSafeTimedSerializer

    other = URLSafeTimedSerializer(SECRET, salt="partypoints.checkin").dumps({"p": 1, "pl": "x"})
    with pytest.raises(SessionError, match=INVALID):
        read_session(secret=SECRET, token=other, max_age_s=3600)


def test_expiry(clock):
    token = issue_session(secret=SECRET, person_id=42, platform="wecom")
    clock.now += 3600
    assert read_session(secret=SECRET, token=token, max_age_s=3600).person_id == 42
    clock.now += 1
    with pytest.raises(SessionError) as info:
        read_session(secret=SECRET, token=token, max_age_s=3600)
    assert str(info.value) == EXPIRED


def test_a_forged_token_stays_invalid_after_expiry(clock):
    token = issue_session(secret="other", person_id=42, platform="wecom")
    clock.now += 10_000
    with pytest.raises(SessionError, match=INVALID):
        read_session(secret=SECRET, token=token, max_age_s=3600)


@pytest.mark.parametrize(
    ("person_id", "platform"), [(0, "dingtalk"), (-1, "dingtalk"), (True, "x"), (1, "")]
)
def test_issue_refuses_nonsense(person_id, platform):
    with pytest.raises(ValueError):
        issue_session(secret=SECRET, person_id=person_id, platform=platform)


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        issue_session(secret="", person_id=1, platform="dingtalk")


@pytest.mark.parametrize(
    ("cookie", "authorization", "expected"),
    [
        (None, None, None),
        ("", "", None),
        ("  ", None, None),
        ("c.o.okie", None, "c.o.okie"),
        (" c ", None, "c"),
        (None, "Bearer abc.def", "abc.def"),
        (None, "bearer abc", "abc"),
        (None, "BEARER   abc  ", "abc"),
        (None, "Bearer", None),
        (None, "Bearer ", None),
        (None, "Bearer a b", None),
        (None, "Basic dXNlcjpwYXNz", None),
        (None, "abc", None),
        (None, "Bearerabc", None),
        ("cookie", "Bearer header", "header"),
        ("cookie", "Basic xyz", "cookie"),
        ("cookie", "Bearer", "cookie"),
    ],
)
def test_token_from(cookie, authorization, expected):
    assert token_from(cookie=cookie, authorization=authorization) == expected
