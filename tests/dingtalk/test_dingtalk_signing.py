"""Golden vectors and edge cases for the DingTalk callback check and custom-robot sign."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.dingtalk.signing import (
    SignatureError,
    callback_sign,
    robot_webhook_url,
    verify_callback,
)
from bot.fakes.dingtalk import signed_callback_headers

TS = 1577262236757
CALLBACK_SECRET = "this is a secret"
CALLBACK_SIGN = "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
ROBOT_SECRET = "this is secret"
ROBOT_SIGN = "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="
ROBOT_SIGN_ENCODED = "hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
HOUR_MS = 3_600_000


def test_callback_sign_matches_the_worked_vector() -> None:
    assert callback_sign(str(TS), CALLBACK_SECRET) == CALLBACK_SIGN


def test_robot_sign_matches_the_worked_vector() -> None:
    assert callback_sign(str(TS), ROBOT_SECRET) == ROBOT_SIGN


def test_robot_webhook_url_appends_timestamp_and_urlencoded_sign() -> None:
    url = robot_webhook_url(
        "https://oapi.dingtalk.com/robot/send?access_token=XXX", ROBOT_SECRET, TS
    )
    assert url == (
        "https://oapi.dingtalk.com/robot/send?access_token=XXX"
        f"&timestamp={TS}&sign={ROBOT_SIGN_ENCODED}"
    )
    assert parse_qs(urlsplit(url).query)["sign"] == [ROBOT_SIGN]


def test_robot_webhook_url_without_query_starts_one() -> None:
    url = robot_webhook_url("http://127.0.0.1:1/robot/send", ROBOT_SECRET, TS)
    assert url.startswith(f"http://127.0.0.1:1/robot/send?timestamp={TS}&sign=")


def test_verify_accepts_the_worked_vector() -> None:
    verify_callback(timestamp=str(TS), sign=CALLBACK_SIGN, secret=CALLBACK_SECRET, now_ms=TS)


@pytest.mark.parametrize("skew", [HOUR_MS, -HOUR_MS])
def test_verify_accepts_exactly_one_hour_off(skew: int) -> None:
    verify_callback(timestamp=str(TS), sign=CALLBACK_SIGN, secret=CALLBACK_SECRET, now_ms=TS + skew)


@pytest.mark.parametrize("skew", [HOUR_MS + 1, -HOUR_MS - 1, 2 * HOUR_MS])
def test_verify_rejects_a_timestamp_over_one_hour_off(skew: int) -> None:
    with pytest.raises(SignatureError) as info:
        verify_callback(
            timestamp=str(TS), sign=CALLBACK_SIGN, secret=CALLBACK_SECRET, now_ms=TS + skew
        )
    assert "window" in info.value.reason


def test_verify_honours_a_custom_window() -> None:
    with pytest.raises(SignatureError):
        verify_callback(
            timestamp=str(TS),
            sign=CALLBACK_SIGN,
            secret=CALLBACK_SECRET,
            now_ms=TS + 1001,
            window_ms=1000,
        )


@pytest.mark.parametrize(
    ("timestamp", "sign"),
    [(None, CALLBACK_SIGN), (str(TS), None), ("", CALLBACK_SIGN), (str(TS), ""), (None, None)],
)
def test_verify_rejects_missing_headers(timestamp: str | None, sign: str | None) -> None:
    with pytest.raises(SignatureError) as info:
        verify_callback(timestamp=timestamp, sign=sign, secret=CALLBACK_SECRET, now_ms=TS)
    assert "missing" in info.value.reason


@pytest.mark.parametrize("timestamp", ["abc", "-1577262236757", "1.5e12", "١٥٧٧٢٦٢٢٣٦٧٥٧", "0x1"])
def test_verify_rejects_a_non_numeric_timestamp(timestamp: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_callback(timestamp=timestamp, sign=CALLBACK_SIGN, secret=CALLBACK_SECRET, now_ms=TS)
    assert "number" in info.value.reason


@pytest.mark.parametrize(
    "sign",
    [
        CALLBACK_SIGN[:-3] + "DA=",
        ROBOT_SIGN,  # right timestamp, another secret
        "签名",  # non-ASCII must fail the check, not crash compare_digest
        "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA",  # padding stripped
    ],
)
def test_verify_rejects_a_bad_sign(sign: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_callback(timestamp=str(TS), sign=sign, secret=CALLBACK_SECRET, now_ms=TS)
    assert "sign" in info.value.reason


def test_verify_rejects_a_sign_replayed_with_another_timestamp() -> None:
    with pytest.raises(SignatureError):
        verify_callback(
            timestamp=str(TS + 1), sign=CALLBACK_SIGN, secret=CALLBACK_SECRET, now_ms=TS
        )


def test_verify_refuses_everything_without_a_secret() -> None:
    with pytest.raises(SignatureError):
        verify_callback(timestamp=str(TS), sign=callback_sign(str(TS), ""), secret="", now_ms=TS)


@given(
    secret=st.text(min_size=1, max_size=64),
    now_ms=st.integers(min_value=1_500_000_000_000, max_value=2_500_000_000_000),
)
def test_the_fake_and_the_app_sign_alike(secret: str, now_ms: int) -> None:
    # Two independent implementations (bot.fakes and bot.dingtalk) pin each other.
    headers = signed_callback_headers(secret, now_ms)
    verify_callback(
        timestamp=headers["timestamp"], sign=headers["sign"], secret=secret, now_ms=now_ms
    )
