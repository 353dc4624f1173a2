"""DingTalk signatures: the robot callback check (§1.2) and the custom-robot webhook sign (§3.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

__all__ = ["SignatureError", "callback_sign", "robot_webhook_url", "verify_callback"]

ONE_HOUR_MS = 3_600_000


class SignatureError(Exception):
    """A callback whose `timestamp`/`sign` headers do not prove it came from DingTalk."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def callback_sign(timestamp_ms: str, secret: str) -> str:
    """Base64 HMAC-SHA256 of `timestamp + "\\n" + secret`, keyed by the secret (no URL-encoding)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_callback(
    *,
    timestamp: str | None,
    sign: str | None,
    secret: str,
    now_ms: int,
    window_ms: int = ONE_HOUR_MS,
) -> None:
    """Raise SignatureError unless `sign` matches `timestamp` and that is within ±`window_ms`."""
    if not secret:
        # With an empty secret anybody can compute a valid sign: refuse rather than accept all.
        raise SignatureError("no app secret configured")
    if not timestamp or not sign:
        raise SignatureError("missing timestamp or sign header")
    stripped = timestamp.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise SignatureError("timestamp is not a number of milliseconds")
    if abs(now_ms - int(stripped)) > window_ms:
        raise SignatureError("timestamp outside the allowed window")
    expected = callback_sign(stripped, secret)
    # compare_digest on bytes: a non-ASCII header must fail the check, not raise TypeError.
    if not hmac.compare_digest(expected.encode(), sign.strip().encode("utf-8", "replace")):
        raise SignatureError("sign does not match")


def robot_webhook_url(webhook: str, secret: str, now_ms: int) -> str:
    """The custom-robot webhook URL with `&timestamp=…&sign=…` (URL-encoded) appended."""
    timestamp = str(now_ms)
    sign = quote_plus(callback_sign(timestamp, secret))
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={timestamp}&sign={sign}"
