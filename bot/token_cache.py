"""A cached platform access token, refreshed before it expires and fetched once at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

# Refresh a token this long before the platform says it expires (ds-py does the same).
TOKEN_EARLY_REFRESH_S = 300


@dataclass
class _Token:
    """A token and when to fetch a fresh one."""

    value: str
    refresh_at: float


class TokenCache:
    """One cached token, fetched by `fetch` under a lock so concurrent callers fetch once."""

    def __init__(self, fetch: Callable[[], tuple[str, int]], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def get(self) -> str:
        """The cached token, fetched first when there is none or it is due for refresh."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        with self._lock:
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.value
            value, expires_in = self._fetch()
            # Never cache past expiry even if a platform ever answers with a very short lifetime.
            margin = min(TOKEN_EARLY_REFRESH_S, expires_in / 2)
            self._token = _Token(value, self._clock() + expires_in - margin)
            return value

    def invalidate(self, stale: str) -> None:
        """Drop `stale` unless another thread already replaced it, so a 401 storm fetches once."""
        with self._lock:
            if self._token is not None and self._token.value == stale:
                self._token = None
